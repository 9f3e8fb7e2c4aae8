//! Spoken phrases as sequences of prompt ids: numbers ("twenty one"), dates ("Tuesday,
//! November twenty-fourth at ten oh five a.m."), the message envelope and the mailbox
//! counts. Pure functions: the prompts themselves live in `prompts/<lang>/prompts.toml`.

use crate::media::prompts::{Clip, Prompts};
use crate::model::State;
use crate::model::{MenuMessage, MessageKind};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::sync::Arc;

/// Prompt lookup for the menu: ids → clips, a missing prompt logged and skipped.
#[derive(Clone, Debug)]
pub struct Say(pub Arc<Prompts>);

impl Say {
    pub fn clips(&self, ids: impl IntoIterator<Item = String>) -> Vec<Arc<Clip>> {
        self.0.sequence(&ids.into_iter().collect::<Vec<_>>())
    }
}

/// A cardinal number, 0 to 999,999: "num-20", "num-1" for 21.
pub fn number(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    if n >= 1_000_000 {
        return crate::media::prompts::digits(&n.to_string());
    }
    if n >= 1000 {
        out.extend(number(n / 1000));
        out.push("num-thousand".into());
        if n.is_multiple_of(1000) {
            return out;
        }
    }
    let n = n % 1000;
    if n >= 100 {
        out.push(format!("num-{}", n / 100));
        out.push("num-hundred".into());
        if n.is_multiple_of(100) {
            return out;
        }
    }
    let n = n % 100;
    if n < 20 {
        if n > 0 || out.is_empty() {
            out.push(format!("num-{n}"));
        }
    } else {
        out.push(format!("num-{}", n / 10 * 10));
        if !n.is_multiple_of(10) {
            out.push(format!("num-{}", n % 10));
        }
    }
    out
}

/// When a message came, relative to now, in the mailbox's time zone: "today" /
/// "yesterday" / a weekday within the last week / "November twenty-fourth" — then "at"
/// and the time. Each instant is read with its own offset (a message left before a
/// daylight-saving change is announced at the local time it had then), by jiff.
pub fn when(at: i64, now: i64, tz: &TimeZone) -> Vec<String> {
    let local = |t: i64| Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned_datetime(tz.clone());
    let (then, today) = (local(at), local(now));
    let mut out = Vec::new();
    match (today.date() - then.date()).get_days() {
        0 => out.push("vm-today".to_string()),
        1 => out.push("vm-yesterday".to_string()),
        2..=6 => out.push(format!("day-{}", then.weekday().to_sunday_zero_offset())),
        _ => {
            let date = then.date();
            out.push(format!("month-{}", date.month()));
            out.push(format!("ord-{}", date.day()));
            if today.date().year() != date.year() {
                out.extend(number(date.year() as u64));
            }
        }
    }
    out.push("vm-at".into());
    let (h24, min) = (then.hour(), then.minute());
    let h12 = if h24 % 12 == 0 { 12 } else { h24 % 12 };
    out.extend(number(h12 as u64));
    match min {
        0 => {}
        1..=9 => {
            out.push("num-oh".into());
            out.extend(number(min as u64));
        }
        _ => out.extend(number(min as u64)),
    }
    out.push(if h24 < 12 { "vm-am" } else { "vm-pm" }.into());
    out
}

/// "Message 3. Received today at 10 05 a.m., from 5 5 5 1 2 3 4. 42 seconds."
pub fn envelope(position: usize, m: &MenuMessage, now: i64, tz: &TimeZone) -> Vec<String> {
    let mut out = vec![match m.kind {
        MessageKind::Fax => "vm-fax-message",
        MessageKind::Email => "vm-email-message",
        MessageKind::Voice => "vm-message",
    }
    .to_string()];
    out.extend(number(position as u64));
    out.push("vm-received".into());
    out.extend(when(m.received_at, now, tz));
    match m.caller.as_deref() {
        // A telephone number is read digit by digit; an e-mail address is not spoken here.
        Some(c) if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit() || ch == '+') => {
            out.push("vm-from".into());
            out.extend(crate::media::prompts::digits(c));
        }
        Some(c) if c.contains('@') => out.push("vm-from-email".into()),
        _ => out.push("vm-from-unknown".into()),
    }
    // A fax: its pages ("3 pages").
    if let Some(pages) = m.pages.filter(|p| *p > 0 && m.kind == MessageKind::Fax) {
        out.extend(number(pages as u64));
        out.push(if pages == 1 { "vm-page" } else { "vm-pages" }.into());
    }
    if let Some(ms) = m.duration_ms.filter(|ms| *ms > 0 && m.kind != MessageKind::Fax) {
        let secs = ((ms + 500) / 1000) as u64;
        if secs >= 60 {
            out.extend(number(secs / 60));
            out.push(if secs / 60 == 1 { "vm-minute" } else { "vm-minutes" }.into());
        }
        if !secs.is_multiple_of(60) || secs < 60 {
            out.extend(number(secs % 60));
            out.push(if secs % 60 == 1 { "vm-second" } else { "vm-seconds" }.into());
        }
    }
    out
}

/// "You have 3 new voice messages, 1 new fax, 5 new e-mails, and 2 saved messages."
pub fn counts(messages: &[MenuMessage]) -> Vec<String> {
    let new = |kind: MessageKind| messages.iter().filter(|m| m.state == State::U && m.kind == kind).count();
    let saved = messages.iter().filter(|m| m.state == State::R).count();
    let parts: Vec<(usize, &str, &str)> = [
        (new(MessageKind::Voice), "vm-new-voice-message", "vm-new-voice-messages"),
        (new(MessageKind::Fax), "vm-new-fax", "vm-new-faxes"),
        (new(MessageKind::Email), "vm-new-email", "vm-new-emails"),
        (saved, "vm-saved-message", "vm-saved-messages"),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .collect();
    if parts.is_empty() {
        return vec!["vm-you-have".into(), "vm-no-messages".into()];
    }
    let mut out = vec!["vm-you-have".to_string()];
    for (i, (n, one, many)) in parts.iter().enumerate() {
        if i > 0 && i + 1 == parts.len() {
            out.push("vm-and".into());
        }
        out.extend(number(*n as u64));
        out.push(if *n == 1 { one } else { many }.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn numbers_are_spoken_as_words() {
        assert_eq!(number(0), s(&["num-0"]));
        assert_eq!(number(13), s(&["num-13"]));
        assert_eq!(number(21), s(&["num-20", "num-1"]));
        assert_eq!(number(40), s(&["num-40"]));
        assert_eq!(number(105), s(&["num-1", "num-hundred", "num-5"]));
        assert_eq!(number(300), s(&["num-3", "num-hundred"]));
        assert_eq!(number(2026), s(&["num-2", "num-thousand", "num-20", "num-6"]));
        assert_eq!(number(12_345), s(&["num-12", "num-thousand", "num-3", "num-hundred", "num-40", "num-5"]));
    }

    #[test]
    fn dates_relative_to_now() {
        // 2026-11-24 10:05 UTC is a Tuesday.
        let at = 1_795_514_700;
        let utc = TimeZone::UTC;
        assert_eq!(when(at, at + 3600, &utc), s(&["vm-today", "vm-at", "num-10", "num-oh", "num-5", "vm-am"]));
        assert_eq!(when(at, at + 86_400, &utc)[0], "vm-yesterday");
        assert_eq!(when(at, at + 3 * 86_400, &utc)[0], "day-2", "Tuesday");
        assert_eq!(when(at, at + 30 * 86_400, &utc)[..2], s(&["month-11", "ord-24"]));
        assert_eq!(when(at, at + 400 * 86_400, &utc)[..3], s(&["month-11", "ord-24", "num-2"]), "another year");
        // The zone moves the day and the hour: 10:05 UTC is 23:05 in Auckland (UTC+13).
        let auckland = TimeZone::get("Pacific/Auckland").unwrap();
        assert_eq!(when(at, at, &auckland)[2..], s(&["num-11", "num-oh", "num-5", "vm-pm"]));
        assert_eq!(
            when(at - 10 * 3600, at, &utc)[2..],
            s(&["num-12", "num-oh", "num-5", "vm-am"]),
            "00:05 is 12 05 a.m."
        );
        assert_eq!(when(at + 2 * 3600 + 25 * 60, at, &utc)[2..], s(&["num-12", "num-30", "vm-pm"]), "12:30 p.m.");
    }

    /// A message left at 01:30 on the night clocks go forward (Berlin, 2026-03-29: 02:00
    /// CET becomes 03:00 CEST) and heard at noon is announced at 1:30 a.m., its own local
    /// time — not 2:30, which one offset ("now", +2 h) applied to both gave. And a
    /// mailbox in another zone hears its own local time.
    #[test]
    fn a_message_left_before_a_dst_change_keeps_its_own_local_time() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let at = jiff::civil::date(2026, 3, 29).at(1, 30, 0, 0).to_zoned_datetime(berlin.clone()).unwrap().timestamp();
        let noon =
            jiff::civil::date(2026, 3, 29).at(12, 0, 0, 0).to_zoned_datetime(berlin.clone()).unwrap().timestamp();
        let (at, noon) = (at.as_second(), noon.as_second());
        assert_eq!(when(at, noon, &berlin), s(&["vm-today", "vm-at", "num-1", "num-30", "vm-am"]));
        let new_york = TimeZone::get("America/New_York").unwrap();
        // 00:30 UTC is 20:30 the evening before in New York (EDT since March 8).
        assert_eq!(when(at, noon, &new_york), s(&["vm-yesterday", "vm-at", "num-8", "num-30", "vm-pm"]));
    }

    #[test]
    fn envelope_and_counts() {
        let m = MenuMessage {
            id: 9,
            kind: MessageKind::Voice,
            state: State::U,
            caller: Some("5551".into()),
            received_at: 1_795_514_700,
            duration_ms: Some(62_400),
            pages: None,
        };
        let e = envelope(2, &m, 1_795_514_700 + 60, &TimeZone::UTC);
        // A fax says its pages, not a duration.
        let fax = MenuMessage { kind: MessageKind::Fax, pages: Some(3), duration_ms: Some(40_000), ..m.clone() };
        let f = envelope(1, &fax, 1_795_514_700 + 60, &TimeZone::UTC);
        assert_eq!(f[0], "vm-fax-message");
        assert_eq!(f[f.len() - 2..], s(&["num-3", "vm-pages"]), "{f:?}");
        assert_eq!(e[..3], s(&["vm-message", "num-2", "vm-received"]));
        let from = e.iter().position(|x| x == "vm-from").unwrap();
        assert_eq!(
            e[from + 1..],
            s(&["digit-5", "digit-5", "digit-5", "digit-1", "num-1", "vm-minute", "num-2", "vm-seconds"])
        );
        let mut list = vec![m.clone(), m.clone(), MenuMessage { kind: MessageKind::Fax, ..m.clone() }];
        list.push(MenuMessage { state: State::R, ..m.clone() });
        assert_eq!(
            counts(&list),
            s(&[
                "vm-you-have",
                "num-2",
                "vm-new-voice-messages",
                "num-1",
                "vm-new-fax",
                "vm-and",
                "num-1",
                "vm-saved-message"
            ])
        );
        assert_eq!(counts(&[]), s(&["vm-you-have", "vm-no-messages"]));
    }
}
