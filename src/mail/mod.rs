//! Mail: account URLs, the homogenized internet message for voice (and later fax),
//! delivery by IMAP APPEND or SMTP, and the outbox that retries deliveries.

pub mod account;
pub mod compose;
pub mod deliver;
pub mod imap;
pub mod net;
pub mod outbox;
pub mod pop3;
pub mod reply_to;
