//! What an incoming call is for, and what its caller hears first — decided here, once,
//! for every way a call can arrive: the number dialled, and what the PBX says about it —
//! an SMDI call detail, a SIP `Diversion` or `History-Info` header.

use crate::ivr::dialplan::{Decision, Dialplan};
use crate::ivr::keys::MenuKeys;
use crate::sip::redirection::Diverted;
use crate::smdi::codec::{CallDetail, CallType};
use crate::store::api::SharedStore;
use crate::store::Mailbox;

/// Where a call goes.
#[derive(Debug)]
pub enum CallRoute {
    /// Refused with this status and reason (no route, no such mailbox, store down).
    Refuse(u16, &'static str),
    /// Leave a message in this mailbox; `busy`: the caller was diverted because the
    /// subscriber's line was busy (the busy greeting).
    Deposit { mailbox: Box<Mailbox>, busy: bool },
    /// The mailbox menu, with these keys; `caller`: the station an SMDI direct call
    /// came from (it stands for the caller ID).
    Menu { keys: MenuKeys, caller: Option<String> },
    /// Receive a fax into this mailbox.
    Fax(Box<Mailbox>),
}

/// What is known of a call when it is routed.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The Request-URI's user: the number dialled.
    pub dialled: &'a str,
    /// The diversion its SIP headers name (as the trunk's policy believes them).
    pub diverted: Option<&'a Diverted>,
    /// Its SMDI call detail.
    pub detail: Option<&'a CallDetail>,
    /// With both: the call detail decides (`[smdi] prefer = "smdi"`).
    pub prefer_smdi: bool,
}

impl<'a> Arrival<'a> {
    /// A call known only by the number dialled.
    pub fn dialled(dialled: &'a str) -> Arrival<'a> {
        Arrival { dialled, diverted: None, detail: None, prefer_smdi: true }
    }
}

/// What the PBX said a call is, from either source.
enum Redirect<'a> {
    /// Diverted from this station's mailbox; busy or not.
    From { station: &'a str, busy: bool, by: &'static str },
    /// The subscriber at this station called voice mail directly (an SMDI `D`).
    Direct { station: Option<&'a str> },
}

fn redirects<'a>(a: &Arrival<'a>) -> Vec<Redirect<'a>> {
    let smdi = a.detail.and_then(|d| match (d.call_type, d.forwarding.as_deref()) {
        (CallType::Direct, _) => Some(Redirect::Direct { station: d.calling.as_deref() }),
        (t, Some(station)) => Some(Redirect::From { station, busy: t == CallType::Busy, by: "SMDI" }),
        (_, None) => None,
    });
    let sip =
        a.diverted.map(|d| Redirect::From { station: d.party.as_str(), busy: d.reason.busy(), by: "SIP diversion" });
    if a.prefer_smdi {
        smdi.into_iter().chain(sip).collect()
    } else {
        sip.into_iter().chain(smdi).collect()
    }
}

/// Routes a call: a mailbox's own fax number first (no dialplan route needed for it);
/// else, when the dialplan sends the number to voice mail (or nowhere), what the PBX
/// said — the diverted station's mailbox (its busy greeting after a busy), or the menu
/// for a subscriber who called in directly — in the order `prefer_smdi` gives; else the
/// dialplan and the store.
pub async fn route(store: &SharedStore, dialplan: &Dialplan, a: Arrival<'_>) -> CallRoute {
    let d = a.dialled.to_string();
    match store.run(move |s| s.mailbox_by_fax_number(&d)).await {
        Ok(Some(m)) => return CallRoute::Fax(Box::new(m)),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %format!("{e:#}"), "store unavailable for fax numbers; the dialplan decides"),
    }
    let decision = dialplan.route(a.dialled);
    if !matches!(decision, Decision::Fax { .. }) {
        for r in redirects(&a) {
            match r {
                Redirect::Direct { station } => {
                    let keys = match &decision {
                        Decision::Menu { keys } => keys.clone(),
                        _ => dialplan.menu_keys(),
                    };
                    return CallRoute::Menu { keys, caller: station.map(str::to_string) };
                }
                Redirect::From { station, busy, by } => {
                    let st = station.to_string();
                    match store.run(move |s| s.mailbox_by_station(&st)).await {
                        Ok(Some(m)) => return CallRoute::Deposit { mailbox: Box::new(m), busy },
                        Ok(None) => tracing::warn!(station, by, "diverted from a station no mailbox has; ignored"),
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "store unavailable");
                            return CallRoute::Refuse(500, "Server Internal Error");
                        }
                    }
                }
            }
        }
    }
    match decision {
        Decision::NoRoute => CallRoute::Refuse(404, "Not Found"),
        Decision::Menu { keys } => CallRoute::Menu { keys, caller: None },
        Decision::Deposit { mailbox } => match known(store, mailbox).await {
            Ok(m) => CallRoute::Deposit { mailbox: m, busy: false },
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
            station: None,
            language: None,
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
        let to = |n| Arrival::dialled(n);
        assert!(
            matches!(route(&shared, &plan, to("100")).await, CallRoute::Deposit { mailbox: m, busy: false } if m.number == "100")
        );
        assert!(matches!(route(&shared, &plan, to("101")).await, CallRoute::Refuse(404, _)), "no such mailbox");
        assert!(matches!(route(&shared, &plan, to("*98")).await, CallRoute::Menu { caller: None, .. }));
        // The mailbox's fax number, before the dialplan's "any number is a mailbox".
        assert!(matches!(route(&shared, &plan, to("7100")).await, CallRoute::Fax(m) if m.number == "100"));
        store
            .add_mailbox(&crate::store::NewMailbox { number: "200".into(), pin: "1234".into(), ..Default::default() })
            .unwrap();
        for taken in ["7100", "100"] {
            assert!(store.set_fax_number("200", Some(taken)).unwrap_err().to_string().contains("already mailbox 100"));
        }
        store.set_fax_number("100", None).unwrap();
        assert!(matches!(route(&shared, &plan, to("7100")).await, CallRoute::Refuse(404, _)), "removed");
    }

    #[tokio::test]
    async fn what_the_pbx_says_aims_the_call() {
        use crate::sip::redirection::Reason;
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        for n in ["1001", "1002"] {
            store
                .add_mailbox(&crate::store::NewMailbox { number: n.into(), pin: "1234".into(), ..Default::default() })
                .unwrap();
        }
        store.set_station("1002", Some("5551002")).unwrap();
        assert!(store.set_station("1001", Some("1002")).is_ok(), "1002 has a station of its own: its number is free");
        store.set_station("1001", None).unwrap();
        assert!(store.set_station("1001", Some("5551002")).unwrap_err().to_string().contains("mailbox 1002"));
        let plan = Dialplan::parse(include_str!("../../dialplans/default.toml")).unwrap();
        let shared = SharedStore::from(store.clone());
        let busy = Diverted { party: "1001".into(), reason: Reason::Busy };
        let unanswered = Diverted { party: "5551002".into(), reason: Reason::NoAnswer };
        let arrive = |diverted, detail| Arrival { dialled: "8500", diverted, detail, prefer_smdi: true };
        // The pilot (a menu route) with a diversion: the diverted station's mailbox.
        let r = route(&shared, &plan, arrive(Some(&busy), None)).await;
        assert!(matches!(&r, CallRoute::Deposit { mailbox: m, busy: true } if m.number == "1001"), "{r:?}");
        let r = route(&shared, &plan, arrive(Some(&unanswered), None)).await;
        assert!(
            matches!(&r, CallRoute::Deposit { mailbox: m, busy: false } if m.number == "1002"),
            "by station: {r:?}"
        );
        // Without one: the menu.
        assert!(matches!(route(&shared, &plan, arrive(None, None)).await, CallRoute::Menu { caller: None, .. }));
        // An unknown diverted party: as dialled.
        let nobody = Diverted { party: "999".into(), reason: Reason::Busy };
        assert!(matches!(route(&shared, &plan, arrive(Some(&nobody), None)).await, CallRoute::Menu { .. }));
        // SMDI: busy, no answer, direct; and which wins with both.
        let md = |t, f: Option<&str>, c: Option<&str>| CallDetail {
            desk: "001".into(),
            terminal: "0001".into(),
            call_type: t,
            forwarding: f.map(Into::into),
            calling: c.map(Into::into),
        };
        let b = md(CallType::Busy, Some("5551002"), Some("3000"));
        let r = route(&shared, &plan, arrive(None, Some(&b))).await;
        assert!(matches!(&r, CallRoute::Deposit { mailbox: m, busy: true } if m.number == "1002"), "{r:?}");
        let na = md(CallType::NoAnswer, Some("1001"), None);
        let r = route(&shared, &plan, arrive(Some(&unanswered), Some(&na))).await;
        assert!(matches!(&r, CallRoute::Deposit { mailbox: m, busy: false } if m.number == "1001"), "SMDI wins: {r:?}");
        let sip_first = Arrival { prefer_smdi: false, ..arrive(Some(&unanswered), Some(&b)) };
        let r = route(&shared, &plan, sip_first).await;
        assert!(matches!(&r, CallRoute::Deposit { mailbox: m, busy: false } if m.number == "1002"), "SIP wins: {r:?}");
        let direct = md(CallType::Direct, None, Some("1001"));
        let r = route(&shared, &plan, Arrival { dialled: "1002", ..arrive(None, Some(&direct)) }).await;
        assert!(
            matches!(&r, CallRoute::Menu { caller: Some(c), .. } if c == "1001"),
            "direct, whatever was dialled: {r:?}"
        );
        // A number the dialplan gives a mailbox, diverted from another: the diverted one.
        let r = route(&shared, &plan, Arrival { dialled: "1002", ..arrive(Some(&busy), None) }).await;
        assert!(matches!(&r, CallRoute::Deposit { mailbox: m, .. } if m.number == "1001"), "{r:?}");
    }
}
