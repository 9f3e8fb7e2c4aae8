//! What a subscriber or an admin can do, whoever asks — a phone application, the CLI,
//! later the web: the business rules live here once, the drivers only move bytes and
//! call these. Services use the store, mail composition and the model; never a driver
//! or the CLI.

pub mod calls;
pub mod deposit;
pub mod fax;
pub mod filters;
pub mod lists;
pub mod messages;
pub mod reading;
pub mod settings;
pub mod time;
