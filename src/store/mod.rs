//! The store: SQLite (the single anchor of reference) plus media files below one directory.
//!
//! All access is synchronous (rusqlite); async code calls it through [`Store::run`],
//! which moves the work onto tokio's blocking pool so that no call task ever waits on
//! disk while it should be sending RTP.

pub mod api;
mod db;
pub mod fax_jobs;
mod files;
pub mod lists;
mod mailboxes;
pub mod menu;
mod messages;
mod outbox;
pub mod outgoing;
pub mod pin;
pub mod server_lock;
mod speech_cache;
mod substitutions;
mod sync;
pub mod trash;
mod values;

pub use sync::{AccountSync, PassRecord, RetrievedRow};
pub use trash::Removal;

pub use crate::durable::write_durable;
pub use db::{now_millis, now_secs, Commit, Store};
pub use mailboxes::{Mailbox, NewMailbox};
pub use messages::{MessageRow, NewFaxMessage, NewVoiceMessage};
pub use outbox::OutboxItem;
pub use substitutions::Substitution;

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        (d, s)
    }

    fn voice(mailbox: &str, mid: &str) -> NewVoiceMessage {
        NewVoiceMessage {
            mailbox: mailbox.into(),
            caller: Some("5551234".into()),
            caller_name: None,
            received_at: 1,
            duration_ms: 4200,
            media_path: "recordings/x.wav".into(),
            media_bytes: 100,
            message_id: mid.into(),
            subject: "s".into(),
        }
    }

    #[test]
    fn a_long_running_store_reads_through_its_own_cache_and_checkpoints_off_the_writers() {
        let (_d, s) = store();
        let pragma = |name: &str| s.conn().pragma_query_value(None, name, |r| r.get::<_, i64>(0)).unwrap();
        // A one-shot command: mapped reads, SQLite's automatic checkpoints.
        assert!(pragma("mmap_size") > 0);
        assert_eq!(pragma("wal_autocheckpoint"), 1000);
        s.start_checkpointer().unwrap();
        assert_eq!(pragma("mmap_size"), 0);
        assert_eq!(pragma("wal_autocheckpoint"), 0);
    }

    #[test]
    fn a_fax_file_without_a_page_is_removed_and_one_that_cannot_be_read_stays() {
        let (_d, s) = store();
        let (rel, abs) = s.new_fax_file("100").unwrap();
        assert_eq!(s.received_fax_file(&rel).unwrap(), None, "never written");
        std::fs::write(&abs, b"II*\0\0\0\0\0").unwrap();
        assert_eq!(s.received_fax_file(&rel).unwrap(), None);
        assert!(!abs.exists(), "a file without a page is removed");
        // An error reading it is not "no page": the file is left for the admin.
        std::fs::create_dir(&abs).unwrap();
        assert!(s.received_fax_file(&rel).is_err());
        assert!(abs.exists());
    }

    #[test]
    fn a_received_fax_is_a_fax_message_with_its_file_and_is_described_not_played() {
        let (_d, s) = store();
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let (rel, abs) = s.new_fax_file("100").unwrap();
        assert!(rel.starts_with("faxes/100/") && abs.parent().unwrap().is_dir());
        std::fs::write(&abs, b"II*\0tiff").unwrap();
        let m = NewFaxMessage {
            mailbox: "100".into(),
            caller: Some("5550199".into()),
            remote_ident: Some("ACME".into()),
            received_at: 5,
            pages: 2,
            duration_ms: 30_000,
            media_path: rel.clone(),
            media_bytes: 8,
            message_id: "<fax1@x>".into(),
            subject: "Fax from 5550199 (ACME), 2 pages".into(),
            result: "Disconnected after permitted retries (T.30 code 9)".into(),
        };
        let id = s.insert_fax_message(&m).unwrap();
        let row = s.message(id).unwrap().unwrap();
        assert_eq!(
            (row.kind, row.state, row.pages, row.media_path.as_deref()),
            (crate::model::MessageKind::Fax, crate::model::State::U, Some(2), Some(rel.as_str()))
        );
        assert!(matches!(
            s.message_audio(id).unwrap(),
            menu::MessageAudio::Describe { kind: crate::model::MessageKind::Fax, .. }
        ));
        // A file that is not there is no fax.
        let gone = NewFaxMessage { media_path: "faxes/100/none.tif".into(), message_id: "<fax2@x>".into(), ..m };
        assert!(s.insert_fax_message(&gone).is_err());
    }

    #[test]
    fn migrations_are_idempotent_and_mailbox_unique() {
        let (d, s) = store();
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let e = s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1".into(), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("already exists"));
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.mailboxes().unwrap().len(), 1);
    }

    #[test]
    fn voice_message_with_imap_gets_outbox_row_atomically() {
        let (_d, s) = store();
        s.add_mailbox(&NewMailbox {
            number: "100".into(),
            pin: "1234".into(),
            imap_url: Some("imap://u:p@127.0.0.1:1/INBOX".into()),
            ..Default::default()
        })
        .unwrap();
        s.add_mailbox(&NewMailbox { number: "200".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let id = s.insert_voice_message(&voice("100", "<a@x>")).unwrap();
        s.insert_voice_message(&voice("200", "<b@x>")).unwrap();
        // The same deposit again is refused: nothing is ever doubled.
        assert!(s.insert_voice_message(&voice("100", "<a@x>")).is_err());
        let due = s.outbox_due(now_millis() + 1, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].message.id, id);
        assert_eq!(due[0].target, "imap");
        s.outbox_failed(due[0].id, "down", now_millis() + 60_000).unwrap();
        assert!(s.outbox_due(now_millis() + 1, 10).unwrap().is_empty());
        let m = &s.messages("100").unwrap()[0];
        assert!(m.delivery.starts_with("pending (imap, 1 attempts"), "{}", m.delivery);
        s.outbox_delivered(due[0].id, Some((7, 42))).unwrap();
        let m = &s.messages("100").unwrap()[0];
        assert_eq!(m.server_uid, Some(42));
        assert_eq!(m.delivery, "delivered (imap)");
        assert_eq!(s.messages("200").unwrap()[0].delivery, "local");
        assert_eq!(s.message_counts("100").unwrap(), (1, 1));
    }
}
