//! A subscriber's own settings, whoever changes them (the phone menu today, the CLI and
//! the web later): the PIN check with its lockout, a new PIN, greetings.

use crate::model::{GreetingKind, LoginResult};
use crate::store::api::SharedStore;
use crate::store::menu::LoginPolicy;
use anyhow::Result;

#[derive(Clone)]
pub struct Settings {
    store: SharedStore,
}

impl Settings {
    pub fn new(store: SharedStore) -> Settings {
        Settings { store }
    }

    /// Checks a PIN under the lockout `policy`. A store that cannot answer is
    /// [`LoginResult::Unavailable`] ("try again later"), never a wrong PIN.
    pub async fn check_pin(&self, mailbox: &str, pin: String, policy: LoginPolicy) -> LoginResult {
        let (mb, now) = (mailbox.to_string(), crate::store::now_secs());
        let r = self.store.run(move |s| s.check_login(&mb, &pin, now, policy)).await.unwrap_or_else(|e| {
            tracing::error!(mailbox, error = %format!("{e:#}"), "login check failed: the caller is asked to try again later");
            LoginResult::Unavailable
        });
        tracing::info!(mailbox, result = ?r, "login");
        r
    }

    pub async fn change_pin(&self, mailbox: &str, pin: String) -> Result<()> {
        let mb = mailbox.to_string();
        // The caller logs it, saying who changed it (by phone, by the CLI).
        self.store.run(move |s| s.set_pin(&mb, &pin)).await
    }

    /// Stores a greeting durably (the file fsynced before the row points at it).
    pub async fn save_greeting(&self, mailbox: &str, kind: GreetingKind, pcm: Vec<i16>) -> Result<()> {
        let mb = mailbox.to_string();
        self.store.run(move |s| s.save_greeting(&mb, kind, &pcm)).await
    }

    pub async fn remove_greeting(&self, mailbox: &str, kind: GreetingKind) -> Result<()> {
        let mb = mailbox.to_string();
        self.store.run(move |s| s.remove_greeting(&mb, kind)).await
    }

    /// The mailbox's own time zone, if it has one.
    pub async fn time_zone(&self, mailbox: &str) -> Result<Option<String>> {
        Ok(self.locale(mailbox).await?.0)
    }

    /// A mailbox's own time zone and language (None: the server's), in one read.
    pub async fn locale(&self, mailbox: &str) -> Result<(Option<String>, Option<String>)> {
        let mb = mailbox.to_string();
        self.store.run(move |s| Ok(s.mailbox(&mb)?.map(|m| (m.timezone, m.language)).unwrap_or_default())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewMailbox, Store};

    fn policy() -> LoginPolicy {
        LoginPolicy { max_attempts: 3, window_secs: 600, lock_secs: 600 }
    }

    #[tokio::test]
    async fn pin_greeting_and_zone_through_the_service() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let mb = NewMailbox {
            number: "100".into(),
            pin: "1234".into(),
            timezone: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        store.add_mailbox(&mb).unwrap();
        let svc = Settings::new(store.clone().into());
        assert_eq!(svc.check_pin("100", "1234".into(), policy()).await, LoginResult::Ok);
        assert_eq!(svc.check_pin("100", "9999".into(), policy()).await, LoginResult::Wrong);
        svc.change_pin("100", "5678".into()).await.unwrap();
        assert_eq!(svc.check_pin("100", "5678".into(), policy()).await, LoginResult::Ok);
        svc.save_greeting("100", GreetingKind::Busy, vec![100; 800]).await.unwrap();
        let path = store.mailbox("100").unwrap().unwrap().busy_greeting_path.expect("a busy greeting");
        assert!(d.path().join(&path).exists());
        svc.remove_greeting("100", GreetingKind::Busy).await.unwrap();
        assert!(store.mailbox("100").unwrap().unwrap().busy_greeting_path.is_none());
        assert_eq!(svc.time_zone("100").await.unwrap().as_deref(), Some("Europe/Berlin"));
        assert!(svc.save_greeting("999", GreetingKind::Busy, vec![0; 80]).await.is_err(), "no such mailbox");
    }
}
