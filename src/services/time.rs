//! Time zones: the dates and times a subscriber hears are in their mailbox's zone.

use jiff::tz::TimeZone;

/// The zone of a mailbox: its own (`mailbox.timezone`), else the server's. A stored name
/// that no longer resolves (a time-zone database without it) is logged and the server's
/// zone used: a wrong hour is better than a failed call.
pub fn mailbox_zone(own: Option<&str>, server: &TimeZone) -> TimeZone {
    match own.map(TimeZone::get) {
        Some(Ok(tz)) => tz,
        Some(Err(e)) => {
            tracing::warn!(zone = own.unwrap_or(""), error = %e, "mailbox time zone unknown; using the server's");
            server.clone()
        }
        None => server.clone(),
    }
}

/// Checks an admin's time-zone name.
pub fn check_zone(name: &str) -> anyhow::Result<()> {
    TimeZone::get(name)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{name:?} is not a time zone ({e}); use an IANA name like \"Europe/Berlin\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_zone_else_the_servers() {
        let server = jiff::tz::TimeZone::UTC;
        assert_eq!(super::mailbox_zone(Some("Europe/Berlin"), &server).iana_name(), Some("Europe/Berlin"));
        assert_eq!(super::mailbox_zone(None, &server), server);
        assert_eq!(super::mailbox_zone(Some("Mars/Olympus"), &server), server);
        assert!(super::check_zone("Mars/Olympus").unwrap_err().to_string().contains("IANA"));
        assert!(super::check_zone("America/New_York").is_ok());
    }
}
