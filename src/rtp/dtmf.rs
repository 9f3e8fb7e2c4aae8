//! RFC 4733 telephone-event receiver.
//!
//! An event is reported once, on its first packet, so a key press is acted on without
//! waiting for its end. Continuation packets and the (usually three) retransmitted end
//! packets carry the same timestamp and are recognized as the same event.

#[derive(Debug, Default)]
pub struct DtmfReceiver {
    last: Option<(u32, u32)>,
}

/// The character of RFC 4733 event codes 0–15.
pub fn event_char(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}

impl DtmfReceiver {
    /// Feeds one telephone-event payload; returns a digit when a new event starts.
    pub fn handle(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        if payload.len() < 4 {
            return None;
        }
        let digit = event_char(payload[0])?;
        if self.last == Some((ssrc, timestamp)) {
            return None;
        }
        self.last = Some((ssrc, timestamp));
        Some(digit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_event_despite_repeated_end_packets() {
        let mut d = DtmfReceiver::default();
        let start = [11u8, 10, 0, 160];
        let end = [11u8, 0x80 | 10, 3, 0x20];
        assert_eq!(d.handle(1, 1000, &start), Some('#'));
        assert_eq!(d.handle(1, 1000, &start), None);
        for _ in 0..3 {
            assert_eq!(d.handle(1, 1000, &end), None);
        }
        assert_eq!(d.handle(1, 2000, &[1, 0, 0, 160]), Some('1'));
        assert_eq!(d.handle(1, 3000, &[16, 0, 0, 160]), None, "not a DTMF event");
        assert_eq!(d.handle(1, 4000, &[1, 0]), None, "truncated");
    }
}
