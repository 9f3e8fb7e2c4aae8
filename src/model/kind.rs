//! What a message is: voice, fax or e-mail (seed: "determines message type").

/// A message's kind (serialized as the store writes it: "voice", "fax", "email").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Voice,
    Fax,
    Email,
}

impl MessageKind {
    /// The kind a stored value names (the store's CHECK allows only these).
    pub fn parse(s: &str) -> Option<MessageKind> {
        Some(match s {
            "voice" => MessageKind::Voice,
            "fax" => MessageKind::Fax,
            "email" => MessageKind::Email,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Voice => "voice",
            MessageKind::Fax => "fax",
            MessageKind::Email => "email",
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}
