//! The types every layer shares: a message's kind and state, the views of a message the
//! menu and the sync engine take, greetings, the outcome of a login. Pure data: this
//! module uses nothing of the crate above it, so the store, the sync engine, the phone
//! applications and the CLI can all name these without naming each other.

mod greeting;
mod kind;
mod login;
mod mark;
mod marks;
mod message;
mod state;

pub use greeting::GreetingKind;
pub use kind::MessageKind;
pub use login::LoginResult;
pub use mark::MarkAction;
pub use marks::SpeechMarks;
pub use message::{MenuMessage, StoreMsg};
pub use state::State;
