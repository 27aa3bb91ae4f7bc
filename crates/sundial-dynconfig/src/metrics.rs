//! Dynamic-config metrics (spec §10), on a `prometheus::Registry` the server serves.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

pub const KEY_UPDATES_TOTAL: &str = "dynconfig_key_updates_total";
pub const WATCH_RECONNECTS_TOTAL: &str = "dynconfig_watch_reconnects_total";
pub const WATCH_ACTIVE: &str = "dynconfig_watch_active";
pub const KEYS_LOADED: &str = "dynconfig_keys_loaded";
pub const LOAD_DURATION_SECONDS: &str = "dynconfig_load_duration_seconds";
pub const WRITE_TOTAL: &str = "dynconfig_write_total";
pub const LOAD_FAILURE: &str = "dynconfig_load_failure";

pub const OPERATION_UPDATE: &str = "DynamicConfigUpdate";
pub const OPERATION_DELETE: &str = "DynamicConfigDelete";

/// Reasons a watch stream ended (`dynconfig_watch_reconnects_total{reason}`).
pub const REASON_COMPACTED: &str = "compacted";
pub const REASON_STREAM_ENDED: &str = "stream_ended";
pub const REASON_GONE: &str = "gone";
pub const REASON_ERROR: &str = "error";

/// The collectors one source updates.
#[derive(Clone)]
pub struct Metrics {
    pub key_updates: IntCounterVec,
    pub watch_reconnects: IntCounterVec,
    pub watch_active: IntGauge,
    pub keys_loaded: IntGauge,
    pub load_duration: Histogram,
    pub writes: IntCounterVec,
    pub load_failure: IntGauge,
}

impl Metrics {
    /// Registers the collectors on `registry`, labelled `service=<services>` (for example
    /// `frontend,history`). Registering twice on one registry is an error.
    pub fn register(registry: &Registry, services: &str) -> Result<Metrics, prometheus::Error> {
        let metrics = Metrics::build(services)?;
        registry.register(Box::new(metrics.key_updates.clone()))?;
        registry.register(Box::new(metrics.watch_reconnects.clone()))?;
        registry.register(Box::new(metrics.watch_active.clone()))?;
        registry.register(Box::new(metrics.keys_loaded.clone()))?;
        registry.register(Box::new(metrics.load_duration.clone()))?;
        registry.register(Box::new(metrics.writes.clone()))?;
        registry.register(Box::new(metrics.load_failure.clone()))?;
        Ok(metrics)
    }

    /// Collectors registered nowhere (CLI, tests).
    pub fn unregistered() -> Metrics {
        Metrics::build("").expect("static metric definitions are valid")
    }

    fn build(services: &str) -> Result<Metrics, prometheus::Error> {
        let opts = |name: &str, help: &str| {
            let opts = Opts::new(name, help);
            if services.is_empty() {
                opts
            } else {
                opts.const_label("service", services)
            }
        };
        let mut histogram_opts = HistogramOpts::new(
            LOAD_DURATION_SECONDS,
            "Time of each full dynamic-config load",
        )
        .buckets(vec![
            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        if !services.is_empty() {
            histogram_opts = histogram_opts.const_label("service", services);
        }
        Ok(Metrics {
            key_updates: IntCounterVec::new(
                opts(KEY_UPDATES_TOTAL, "Dynamic-config keys that changed"),
                &["operation", "key"],
            )?,
            watch_reconnects: IntCounterVec::new(
                opts(
                    WATCH_RECONNECTS_TOTAL,
                    "Watch streams that ended for a reason other than stop",
                ),
                &["reason"],
            )?,
            watch_active: IntGauge::with_opts(opts(
                WATCH_ACTIVE,
                "1 while a dynamic-config watch is established",
            ))?,
            keys_loaded: IntGauge::with_opts(opts(
                KEYS_LOADED,
                "Dynamic-config keys after the last full load",
            ))?,
            load_duration: Histogram::with_opts(histogram_opts)?,
            writes: IntCounterVec::new(
                opts(WRITE_TOTAL, "Dynamic-config writes by result"),
                &["result"],
            )?,
            load_failure: IntGauge::with_opts(opts(
                LOAD_FAILURE,
                "1 after a rejected dynamic-config load",
            ))?,
        })
    }

    pub fn key_updates(&self, operation: &str, key: &str) -> u64 {
        self.key_updates.with_label_values(&[operation, key]).get()
    }

    pub fn reconnects(&self, reason: &str) -> u64 {
        self.watch_reconnects.with_label_values(&[reason]).get()
    }

    pub fn write_count(&self, result: &str) -> u64 {
        self.writes.with_label_values(&[result]).get()
    }

    pub fn count_write(&self, ok: bool) {
        self.writes
            .with_label_values(&[if ok { "success" } else { "error" }])
            .inc();
    }
}

/// Renders every metric of `registry` in the Prometheus text format (for `/metrics`).
pub fn render(registry: &Registry) -> String {
    use prometheus::Encoder;
    let mut buffer = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(error) = encoder.encode(&registry.gather(), &mut buffer) {
        tracing::warn!(%error, "encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_service_label() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry, "frontend,history").unwrap();
        metrics
            .key_updates
            .with_label_values(&[OPERATION_UPDATE, "frontend.rps"])
            .inc();
        metrics.watch_active.set(1);
        metrics.count_write(true);
        let text = render(&registry);
        assert!(
            text.contains(
                r#"dynconfig_key_updates_total{key="frontend.rps",operation="DynamicConfigUpdate",service="frontend,history"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"dynconfig_watch_active{service="frontend,history"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"dynconfig_write_total{result="success",service="frontend,history"} 1"#
            )
        );
        assert!(
            Metrics::register(&registry, "frontend,history").is_err(),
            "double registration"
        );
    }
}
