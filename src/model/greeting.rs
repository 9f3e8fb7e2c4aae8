//! The greetings a subscriber records.

/// The greetings a subscriber records by phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreetingKind {
    Unavailable,
    Busy,
    /// The subscriber's name, used in the default greeting.
    Name,
    /// Overrides the others while it exists (holidays).
    Temporary,
}

impl GreetingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GreetingKind::Unavailable => "unavailable",
            GreetingKind::Busy => "busy",
            GreetingKind::Name => "name",
            GreetingKind::Temporary => "temporary",
        }
    }
}
