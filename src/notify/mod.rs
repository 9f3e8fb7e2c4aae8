//! The change hub: every writer announces "mailbox N changed" once, here, saying where
//! the change came from; every sink that cares hears it — the message-waiting lamps
//! (SIP NOTIFY and the PBX's over SMDI) and the sync engine today, e-mail or SMS
//! notices and the web later. A
//! writer never needs to know who listens, and a new sink never needs a writer edited.
//!
//! Sinks are called on the announcing thread, so a sink only hands the change on (a
//! channel send) and never blocks. No tokio here: the driver's sinks wrap its channels.

use std::sync::{Arc, RwLock};

/// Where a change came from; each sink decides which ones concern it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A caller left a new message.
    Deposit,
    /// The subscriber changed something by phone (heard, deleted, a greeting): the mail
    /// account must hear of it.
    Phone,
    /// The outbox placed a message in the mail account.
    Delivery,
    /// A sync pass carried a change from the mail server (a message read in a mail
    /// client, new mail, a deletion).
    MailServer,
}

/// One announced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub mailbox: String,
    pub origin: Origin,
}

type Sink = Box<dyn Fn(&Change) + Send + Sync>;

/// A cheap handle to the hub (clones share the sinks). An empty hub — a CLI command,
/// a test — hears every change and tells no one.
#[derive(Clone, Default)]
pub struct Hub {
    sinks: Arc<RwLock<Vec<Sink>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hub({} sinks)", self.sinks.read().map(|s| s.len()).unwrap_or(0))
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Adds a sink for every later change.
    pub fn add_sink(&self, sink: impl Fn(&Change) + Send + Sync + 'static) {
        self.sinks.write().unwrap_or_else(|p| p.into_inner()).push(Box::new(sink));
    }

    /// Announces that `mailbox` changed.
    pub fn changed(&self, mailbox: &str, origin: Origin) {
        let change = Change { mailbox: mailbox.to_string(), origin };
        for sink in self.sinks.read().unwrap_or_else(|p| p.into_inner()).iter() {
            sink(&change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_sink_hears_every_change_once() {
        let hub = Hub::new();
        hub.changed("100", Origin::Phone); // nobody listens yet: nothing happens
        let (a, b) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let (a2, b2) = (a.clone(), b.clone());
        hub.add_sink(move |c| a2.lock().unwrap().push(c.clone()));
        let clone = hub.clone();
        clone.add_sink(move |c| {
            if c.origin != Origin::Delivery {
                b2.lock().unwrap().push(c.mailbox.clone())
            }
        });
        hub.changed("100", Origin::Deposit);
        clone.changed("200", Origin::Delivery);
        assert_eq!(
            *a.lock().unwrap(),
            [
                Change { mailbox: "100".into(), origin: Origin::Deposit },
                Change { mailbox: "200".into(), origin: Origin::Delivery }
            ]
        );
        assert_eq!(*b.lock().unwrap(), ["100"], "a sink picks the origins it cares about");
    }
}
