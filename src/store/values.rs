//! How the model's enums are stored: as the text the schema's CHECKs allow. A value
//! outside them (a database edited by hand, a newer schema) is an error that names it,
//! never silently read as "unread" or "voice".

use crate::model::{MessageKind, State};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

impl FromSql for State {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        State::parse(s).ok_or_else(|| FromSqlError::Other(format!("not a message state: {s:?}").into()))
    }
}

impl ToSql for State {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for MessageKind {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        MessageKind::parse(s).ok_or_else(|| FromSqlError::Other(format!("not a message kind: {s:?}").into()))
    }
}

impl ToSql for MessageKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_stored_value_is_an_error_naming_it() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let state = |v: &str| c.query_row("SELECT ?1", [v], |r| r.get::<_, State>(0));
        assert_eq!(state("M").unwrap(), State::M);
        let e = state("X").unwrap_err().to_string();
        assert!(e.contains("not a message state") && e.contains("\"X\""), "{e}");
        let kind = |v: &str| c.query_row("SELECT ?1", [v], |r| r.get::<_, MessageKind>(0));
        assert_eq!(kind("fax").unwrap(), MessageKind::Fax);
        assert!(kind("letter").unwrap_err().to_string().contains("not a message kind"));
        let back: String = c.query_row("SELECT ?1", [MessageKind::Email], |r| r.get(0)).unwrap();
        assert_eq!(back, "email");
    }
}
