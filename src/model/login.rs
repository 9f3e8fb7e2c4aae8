//! The outcome of a mailbox login.

/// The store's verdict on a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Ok,
    /// Wrong PIN or unknown mailbox (the caller is not told which).
    Wrong,
    /// Too many wrong PINs recently: the mailbox is locked for now.
    Locked,
    /// The check itself failed (the store could not be read): neither right nor wrong,
    /// and not counted as a wrong PIN.
    Unavailable,
}
