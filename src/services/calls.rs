//! What an incoming call is for, and what its caller hears first — decided here, once,
//! for every way a call can arrive (a SIP trunk today; an SMDI call detail later).

use crate::ivr::dialplan::{Decision, Dialplan};
use crate::ivr::keys::MenuKeys;
use crate::store::api::SharedStore;
use crate::store::Mailbox;

/// Where a call goes.
#[derive(Debug)]
pub enum CallRoute {
    /// Refused with this status and reason (no route, no such mailbox, store down).
    Refuse(u16, &'static str),
    /// Leave a message in this mailbox.
    Deposit(Box<Mailbox>),
    /// The mailbox menu, with these keys.
    Menu(MenuKeys),
    /// Receive a fax into this mailbox.
    Fax(Box<Mailbox>),
}

/// Routes a call to `dialled`: a mailbox's own fax number first (no dialplan route
/// needed for it), then the dialplan and the store.
pub async fn route(store: &SharedStore, dialplan: &Dialplan, dialled: &str) -> CallRoute {
    let d = dialled.to_string();
    match store.run(move |s| s.mailbox_by_fax_number(&d)).await {
        Ok(Some(m)) => return CallRoute::Fax(Box::new(m)),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %format!("{e:#}"), "store unavailable for fax numbers; the dialplan decides"),
    }
    match dialplan.route(dialled) {
        Decision::NoRoute => CallRoute::Refuse(404, "Not Found"),
        Decision::Menu { keys } => CallRoute::Menu(keys),
        Decision::Deposit { mailbox } => match known(store, mailbox).await {
            Ok(m) => CallRoute::Deposit(m),
            Err(refusal) => refusal,
        },
        Decision::Fax { mailbox } => match known(store, mailbox).await {
            Ok(m) => CallRoute::Fax(m),
            Err(refusal) => refusal,
        },
    }
}

/// The mailbox a route names, or how the call is refused (404 unknown, 500 store down).
async fn known(store: &SharedStore, mailbox: String) -> Result<Box<Mailbox>, CallRoute> {
    match store.run(move |s| s.mailbox(&mailbox)).await {
        Ok(Some(m)) => Ok(Box::new(m)),
        Ok(None) => Err(CallRoute::Refuse(404, "Not Found")),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "store unavailable");
            Err(CallRoute::Refuse(500, "Server Internal Error"))
        }
    }
}

/// What a caller leaving a message hears before the beep, as files to try in order —
/// a recording may be unreadable, then the next one plays — and what to say when none
/// plays: "The person at extension <name, or the number's digits> is not available".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreetingPlan {
    pub recorded: Vec<String>,
    /// The recorded name for the default greeting.
    pub name: Option<String>,
    pub number: String,
}

/// The temporary greeting while one is set, else the busy greeting for a call diverted
/// on busy, else the unavailable greeting, else the default one.
pub fn greeting_plan(mb: &Mailbox, busy: bool) -> GreetingPlan {
    let recorded =
        [mb.temp_greeting_path.as_ref(), mb.busy_greeting_path.as_ref().filter(|_| busy), mb.greeting_path.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
    GreetingPlan { recorded, name: mb.name_path.clone(), number: mb.number.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn mailbox() -> Mailbox {
        Mailbox {
            number: "100".into(),
            name: None,
            email: None,
            imap_url: None,
            pop3_url: None,
            smtp_url: None,
            greeting_path: None,
            busy_greeting_path: None,
            name_path: None,
            temp_greeting_path: None,
            timezone: None,
            fax_number: None,
        }
    }

    #[test]
    fn the_temporary_greeting_wins_then_busy_on_busy_then_unavailable() {
        let none = greeting_plan(&mailbox(), true);
        assert_eq!(none, GreetingPlan { recorded: vec![], name: None, number: "100".into() });
        let mb = Mailbox {
            greeting_path: Some("u.wav".into()),
            busy_greeting_path: Some("b.wav".into()),
            name_path: Some("n.wav".into()),
            ..mailbox()
        };
        assert_eq!(greeting_plan(&mb, false).recorded, ["u.wav"], "busy greeting only for calls diverted on busy");
        assert_eq!(greeting_plan(&mb, true).recorded, ["b.wav", "u.wav"]);
        let mb = Mailbox { temp_greeting_path: Some("t.wav".into()), ..mb };
        assert_eq!(greeting_plan(&mb, true).recorded, ["t.wav", "b.wav", "u.wav"]);
        assert_eq!(greeting_plan(&mb, true).name.as_deref(), Some("n.wav"));
    }

    #[tokio::test]
    async fn calls_go_where_the_dialplan_and_the_store_say() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        store
            .add_mailbox(&crate::store::NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() })
            .unwrap();
        store.set_fax_number("100", Some("7100")).unwrap();
        let plan = Dialplan::parse(include_str!("../../dialplans/default.toml")).unwrap();
        let shared = SharedStore::from(store.clone());
        assert!(matches!(route(&shared, &plan, "100").await, CallRoute::Deposit(m) if m.number == "100"));
        assert!(matches!(route(&shared, &plan, "101").await, CallRoute::Refuse(404, _)), "no such mailbox");
        assert!(matches!(route(&shared, &plan, "*98").await, CallRoute::Menu(_)));
        // The mailbox's fax number, before the dialplan's "any number is a mailbox".
        assert!(matches!(route(&shared, &plan, "7100").await, CallRoute::Fax(m) if m.number == "100"));
        store
            .add_mailbox(&crate::store::NewMailbox { number: "200".into(), pin: "1234".into(), ..Default::default() })
            .unwrap();
        for taken in ["7100", "100"] {
            assert!(store.set_fax_number("200", Some(taken)).unwrap_err().to_string().contains("already mailbox 100"));
        }
        store.set_fax_number("100", None).unwrap();
        assert!(matches!(route(&shared, &plan, "7100").await, CallRoute::Refuse(404, _)), "removed");
    }
}
