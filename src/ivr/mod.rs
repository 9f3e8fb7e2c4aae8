//! Call applications and the dialplan that routes calls to them.

pub mod deposit;
pub mod dialplan;
pub mod fax;
pub mod keys;
pub mod menu;
pub mod prompt_use;
pub mod speech;
