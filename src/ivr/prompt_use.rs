//! Which prompts each application can play: what `prompts list` shows as "used by",
//! what `prompts verify` and `dialplan check` require to exist. Kept beside the
//! applications and checked against their source by the tests below, so a prompt an
//! application starts to play cannot be missing from this list.

use super::dialplan::{App, Dialplan};

/// Prompts the deposit plays: its greeting (when the mailbox has none recorded) and
/// the words after the recording. `digit-` is a family: the mailbox number read digit
/// by digit.
const DEPOSIT: &[&str] = &["vm-intro-person", "vm-unavailable", "vm-saved", "vm-too-short", "vm-transfer", "digit-"];

/// Prompts the mailbox menu plays. The families end in `-`: numbers (`num-`), digits
/// (`digit-`), and the parts of a date (`day-`, `month-`, `ord-`) built by `ivr::speech`.
const MENU: &[&str] = &[
    "num-",
    "digit-",
    "day-",
    "month-",
    "ord-",
    "vm-am",
    "vm-and",
    "vm-at",
    "vm-cancelled",
    "vm-deleted",
    "vm-email-message",
    "vm-failed",
    "vm-fax-forward-choice",
    "vm-fax-message",
    "vm-fax-number",
    "vm-fax-queued",
    "vm-first",
    "vm-forward-to",
    "vm-forwarded",
    "vm-from",
    "vm-from-email",
    "vm-from-unknown",
    "vm-goodbye",
    "vm-greeting-saved",
    "vm-help",
    "vm-incorrect",
    "vm-invalid",
    "vm-locked",
    "vm-login",
    "vm-main-menu",
    "vm-marked-new",
    "vm-message",
    "vm-message-options",
    "vm-message-saved",
    "vm-minute",
    "vm-minutes",
    "vm-new-email",
    "vm-new-emails",
    "vm-new-fax",
    "vm-new-faxes",
    "vm-new-pin",
    "vm-new-voice-message",
    "vm-new-voice-messages",
    "vm-no-messages",
    "vm-no-more",
    "vm-no-reply-address",
    "vm-no-such-mailbox",
    "vm-nothing-recorded",
    "vm-page",
    "vm-pages",
    "vm-password",
    "vm-pin-mismatch",
    "vm-pin-too-short",
    "vm-pm",
    "vm-received",
    "vm-record-comment",
    "vm-record-greeting",
    "vm-record-name",
    "vm-record-reply",
    "vm-reenter-pin",
    "vm-reply-choice",
    "vm-reply-failed",
    "vm-reply-sent",
    "vm-review",
    "vm-saved-message",
    "vm-saved-messages",
    "vm-second",
    "vm-seconds",
    "vm-setup-done",
    "vm-setup-menu",
    "vm-today",
    "vm-undeleted",
    "vm-unplayable",
    "vm-yesterday",
    "vm-you-have",
];

/// The prompt ids and families (ending in `-`) an application plays. Fax reception
/// plays none: a fax machine listens for tones, not words.
pub fn prompts_of(app: App) -> &'static [&'static str] {
    match app {
        App::Deposit => DEPOSIT,
        App::Menu => MENU,
        App::Fax => &[],
    }
}

/// Whether `app` can play prompt `id`.
pub fn plays(app: App, id: &str) -> bool {
    prompts_of(app).iter().any(|p| if p.ends_with('-') { id.starts_with(p) } else { id == *p })
}

/// The applications that play `id`, each with the dialplan patterns routed to it.
pub fn users(dialplan: &Dialplan, id: &str) -> Vec<(App, Vec<String>)> {
    [App::Deposit, App::Menu, App::Fax]
        .into_iter()
        .filter(|&app| plays(app, id))
        .map(|app| {
            let patterns = dialplan.routes.iter().filter(|r| r.app == app).map(|r| r.pattern.clone()).collect();
            (app, patterns)
        })
        .collect()
}

/// The single prompts (not families) a dialplan's applications can play that are not
/// among `ids`: each with the first route that needs it. A family is missing only when
/// no prompt of it exists.
pub fn missing<'a>(dialplan: &'a Dialplan, ids: &[&str]) -> Vec<(&'static str, &'a str)> {
    let mut out: Vec<(&'static str, &'a str)> = Vec::new();
    for r in &dialplan.routes {
        for p in prompts_of(r.app) {
            let have = if p.ends_with('-') { ids.iter().any(|i| i.starts_with(p)) } else { ids.contains(p) };
            if !have && !out.iter().any(|(q, _)| q == p) {
                out.push((p, r.pattern.as_str()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prompt id written as a literal in an application's source.
    fn literals(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        for part in src.split('"').skip(1).step_by(2) {
            let known = ["vm-", "num-", "digit-", "day-", "month-", "ord-"].iter().any(|f| part.starts_with(f));
            if known && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                out.push(part.to_string());
            }
        }
        out
    }

    #[test]
    fn every_prompt_an_application_plays_is_listed() {
        for (app, srcs) in [
            (App::Menu, vec![include_str!("menu.rs"), include_str!("menu/record.rs"), include_str!("speech.rs")]),
            (App::Deposit, vec![include_str!("../driver/deposit_call.rs"), include_str!("deposit.rs")]),
        ] {
            for src in srcs {
                for id in literals(src) {
                    assert!(plays(app, &id), "{app:?} plays {id:?} but prompt_use does not list it");
                }
            }
        }
    }

    #[test]
    fn every_listed_prompt_has_an_english_text() {
        let texts: toml::Table = toml::from_str(include_str!("../../prompts/en/prompts.toml")).unwrap();
        for app in [App::Deposit, App::Menu] {
            for p in prompts_of(app) {
                let ok = if p.ends_with('-') { texts.keys().any(|k| k.starts_with(p)) } else { texts.contains_key(*p) };
                assert!(ok, "{p} has no text in prompts/en/prompts.toml");
            }
        }
    }

    #[test]
    fn users_and_missing_follow_the_dialplan() {
        let d = Dialplan::parse(
            "[[route]]\npattern = \"8500\"\napp = \"menu\"\n[[route]]\npattern = \"_X.\"\napp = \"deposit\"\n",
        )
        .unwrap();
        let u = users(&d, "digit-5");
        assert_eq!(u.len(), 2, "digits are read by both: {u:?}");
        assert_eq!(users(&d, "vm-saved"), vec![(App::Deposit, vec!["_X.".to_string()])]);
        assert!(users(&d, "vm-nonsense").is_empty());
        let m = missing(&d, &["vm-intro-person", "digit-1"]);
        assert!(m.contains(&("vm-unavailable", "_X.")), "{m:?}");
        assert!(m.contains(&("vm-main-menu", "8500")), "{m:?}");
        assert!(!m.iter().any(|(p, _)| *p == "digit-"), "a family with one member is there");
        let fax = Dialplan::parse("[[route]]\npattern = \"_X.\"\napp = \"fax\"\n").unwrap();
        assert!(missing(&fax, &[]).is_empty());
    }
}
