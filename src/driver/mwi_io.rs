//! The message-waiting task: keeps every subscribed phone's lamp true. It hears of
//! subscriptions from the SIP task and of possible changes from everything that changes
//! messages (a deposit saved, a change by phone, a sync pass — which is how a message
//! read in a mail client turns the lamp off), re-reads the mailbox's counts and sends a
//! NOTIFY when they differ from the last ones announced. A store that cannot be read
//! sends nothing: the phones keep the last true value, never a bogus count.

use super::channels::{MwiEvent, SipCommand};
use crate::config::MwiConfig;
use crate::mwi::{Counts, Registry};
use crate::store::Store;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn read_counts(store: &Store, mailbox: &str) -> Option<Counts> {
    let mb = mailbox.to_string();
    match store.run(move |s| s.mwi_rows(&mb)).await {
        Ok(rows) => Some(Counts::from_rows(&rows)),
        Err(e) => {
            tracing::warn!(mailbox, error = %format!("{e:#}"), "MWI: cannot read counts; phones keep the last value");
            None
        }
    }
}

pub async fn run(
    store: Store,
    cfg: MwiConfig,
    account_host: String,
    sip: mpsc::Sender<SipCommand>,
    mut events: mpsc::UnboundedReceiver<MwiEvent>,
    stop: CancellationToken,
) {
    let mut reg = Registry::default();
    let account = |mb: &str| format!("sip:{mb}@{account_host}");
    let phones: Vec<(String, String, std::net::SocketAddr, bool)> = cfg
        .phone
        .iter()
        .filter_map(|p| Some((p.mailbox.clone(), p.uri.clone(), p.addr().ok()?, p.over_tls())))
        .collect();
    let mut recheck = tokio::time::interval(Duration::from_secs_f64(cfg.recheck_secs));
    // The first tick is immediate: at start-up the state is (re)sent to configured phones.
    loop {
        let changed: Vec<String> = tokio::select! {
            _ = stop.cancelled() => return,
            _ = recheck.tick() => {
                let mut v = reg.watched();
                v.extend(phones.iter().map(|p| p.0.clone()));
                v.sort();
                v.dedup();
                v
            }
            ev = events.recv() => match ev {
                None => return,
                Some(MwiEvent::Subscribed { sub, mailbox }) => {
                    reg.subscribe(sub, &mailbox);
                    // A new subscriber gets the state now: read afresh (changes to mailboxes
                    // nobody watched were not followed), else the last announced.
                    let counts = match read_counts(&store, &mailbox).await {
                        Some(c) => {
                            reg.update(&mailbox, c);
                            Some(c)
                        }
                        None => reg.last(&mailbox),
                    };
                    // Unknown (store unreadable): a NOTIFY without body, as RFC 6665 allows.
                    let body = counts.map(|c| c.body(&account(&mailbox))).unwrap_or_default();
                    tracing::info!(sub, mailbox, body = %body.replace("\r\n", "; "), "MWI subscription");
                    crate::metrics::METRICS.mwi_notifies.inc();
                    let _ = sip.send(SipCommand::Notify(sub, body)).await;
                    continue;
                }
                Some(MwiEvent::Ending(sub)) => {
                    if let Some(mb) = reg.unsubscribe(sub) {
                        let body = reg.last(&mb).map(|c| c.body(&account(&mb))).unwrap_or_default();
                        crate::metrics::METRICS.mwi_notifies.inc();
                    let _ = sip.send(SipCommand::Notify(sub, body)).await;
                    }
                    continue;
                }
                Some(MwiEvent::Unsubscribed(sub)) => {
                    reg.unsubscribe(sub);
                    continue;
                }
                Some(MwiEvent::Changed(mb)) => vec![mb],
            },
        };
        for mb in changed {
            // Counts of a mailbox no phone listens to are not read at all.
            if !reg.is_watched(&mb) && !phones.iter().any(|p| p.0 == mb) {
                continue;
            }
            let Some(counts) = read_counts(&store, &mb).await else { continue };
            let Some(subs) = reg.update(&mb, counts) else { continue };
            let body = counts.body(&account(&mb));
            tracing::info!(mailbox = %mb, subscribers = subs.len(), body = %body.replace("\r\n", "; "), "MWI changed");
            for sub in subs {
                crate::metrics::METRICS.mwi_notifies.inc();
                let _ = sip.send(SipCommand::Notify(sub, body.clone())).await;
            }
            for (_, uri, addr, tls) in phones.iter().filter(|p| p.0 == mb) {
                let phone = SipCommand::NotifyPhone { uri: uri.clone(), addr: *addr, tls: *tls, body: body.clone() };
                let _ = sip.send(phone).await;
            }
        }
    }
}
