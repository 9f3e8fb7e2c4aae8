//! What the server counts for the metrics endpoint (`[metrics] listen`): one process-wide
//! set of counters, gauges and histograms (prometheus-client), counted where things
//! happen — a call ending, a deposit saved, a delivery, a sync pass, a NOTIFY, a lamp —
//! and encoded as OpenMetrics text by `driver::metrics_http`. Counting is a few atomic
//! adds; nothing here blocks or allocates per event beyond a label set.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    /// Calls ended, by application (deposit, menu, fax, routing) and result
    /// (completed, refused, failed).
    pub calls: Family<Labels, Counter>,
    pub calls_active: Gauge,
    pub rtp_received: Counter,
    pub rtp_lost: Counter,
    pub rtp_late: Counter,
    pub deposits_saved: Counter,
    /// Deliveries by result (ok, failed attempt).
    pub deliveries: Family<Labels, Counter>,
    /// Set when scraped: deliveries not done yet.
    pub deliveries_pending: Gauge,
    /// Sync passes by mode (full, qresync, condstore, pop3…) and result (ok, failed).
    pub sync_passes: Family<Labels, Counter>,
    pub sync_pass_seconds: Family<Labels, Histogram>,
    pub mwi_notifies: Counter,
    /// SMDI lamp commands by state (on, off).
    pub smdi_lamps: Family<Labels, Counter>,
}

fn pass_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("voxbridge");
        let m = Metrics {
            calls: Family::default(),
            calls_active: Gauge::default(),
            rtp_received: Counter::default(),
            rtp_lost: Counter::default(),
            rtp_late: Counter::default(),
            deposits_saved: Counter::default(),
            deliveries: Family::default(),
            deliveries_pending: Gauge::default(),
            sync_passes: Family::default(),
            sync_pass_seconds: Family::new_with_constructor(pass_histogram),
            mwi_notifies: Counter::default(),
            smdi_lamps: Family::default(),
            registry: Registry::default(),
        };
        registry.register("calls", "Calls ended, by application and result", m.calls.clone());
        registry.register("calls_active", "Calls in progress", m.calls_active.clone());
        registry.register("rtp_packets_received", "RTP packets received from callers", m.rtp_received.clone());
        registry.register("rtp_packets_lost", "RTP packets that never arrived", m.rtp_lost.clone());
        registry.register("rtp_packets_late", "RTP packets that arrived after their playout time", m.rtp_late.clone());
        registry.register("deposits_saved", "Voice messages saved", m.deposits_saved.clone());
        registry.register("deliveries", "Delivery attempts to mail accounts, by result", m.deliveries.clone());
        registry.register("deliveries_pending", "Messages waiting for delivery", m.deliveries_pending.clone());
        registry.register("sync_passes", "Sync passes, by mode and result", m.sync_passes.clone());
        registry.register("sync_pass_seconds", "Duration of sync passes, by mode", m.sync_pass_seconds.clone());
        registry.register("mwi_notifies", "Message-waiting NOTIFYs sent", m.mwi_notifies.clone());
        registry.register("smdi_lamps", "SMDI lamp commands sent, by state", m.smdi_lamps.clone());
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text of everything counted so far.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn label(name: &'static str, value: &str) -> Labels {
    vec![(name, value.to_string())]
}

pub fn labels2(a: &'static str, av: &str, b: &'static str, bv: &str) -> Labels {
    vec![(a, av.to_string()), (b, bv.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_events_come_out_as_openmetrics_text() {
        let m = Metrics::new();
        m.calls.get_or_create(&labels2("app", "deposit", "result", "completed")).inc();
        m.calls_active.set(2);
        m.sync_pass_seconds.get_or_create(&label("mode", "qresync")).observe(0.02);
        let text = m.encode();
        assert!(text.contains("voxbridge_calls_total{app=\"deposit\",result=\"completed\"} 1"), "{text}");
        assert!(text.contains("voxbridge_calls_active 2"), "{text}");
        assert!(text.contains("voxbridge_sync_pass_seconds_bucket{le=\"0.025\",mode=\"qresync\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
