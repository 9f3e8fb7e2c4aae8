//! Where the store's media files go, below its directory — decided here only:
//! recordings `recordings/<mailbox>/<prefix><unix time>-<random>.wav` (a new file each
//! time, never overwritten) and greetings `greetings/<mailbox>[-<kind>].wav` (one per
//! kind, replaced atomically), received faxes `faxes/<mailbox>/fax-<unix time>-<random>.tif`
//! (written by the fax engine). A mailbox number is reduced to ASCII letters and digits,
//! so no number can name a path outside the store.

use crate::model::GreetingKind;

fn safe(mailbox: &str) -> String {
    mailbox.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// A new recording's path below the store.
pub(super) fn recording(mailbox: &str, prefix: &str, now_secs: i64) -> String {
    format!("recordings/{}/{prefix}{now_secs}-{:08x}.wav", safe(mailbox), rand::random::<u32>())
}

/// A fax job's own copy of its pages below the store (`faxes/outgoing/job-<unix time>-<random>.tif`).
pub(super) fn outgoing_fax(now_secs: i64) -> String {
    format!("faxes/outgoing/job-{now_secs}-{:08x}.tif", rand::random::<u32>())
}

/// A received fax's path below the store (`faxes/<mailbox>/fax-<unix time>-<random>.tif`).
pub(super) fn fax(mailbox: &str, now_secs: i64) -> String {
    format!("faxes/{}/fax-{now_secs}-{:08x}.tif", safe(mailbox), rand::random::<u32>())
}

/// The path of a mailbox's greeting of `kind` below the store.
pub(super) fn greeting(mailbox: &str, kind: GreetingKind) -> String {
    match kind {
        GreetingKind::Unavailable => format!("greetings/{}.wav", safe(mailbox)),
        other => format!("greetings/{}-{}.wav", safe(mailbox), other.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_below_the_store() {
        assert!(recording("../../etc/100", "reply-", 7).starts_with("recordings/etc100/reply-7-"));
        assert_eq!(greeting("1/0", GreetingKind::Unavailable), "greetings/10.wav");
        assert_eq!(greeting("100", GreetingKind::Busy), format!("greetings/100-{}.wav", GreetingKind::Busy.as_str()));
        assert_ne!(recording("100", "", 7), recording("100", "", 7), "a new file each time");
        assert!(fax("../100", 9).starts_with("faxes/100/fax-9-") && fax("1", 9).ends_with(".tif"));
    }
}
