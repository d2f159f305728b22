//! What an operator scrapes at `/metrics`: Prometheus text, recorded through the `metrics`
//! facade wherever something happens and rendered here. The names, each with its labels:
//!
//! - `palaver_connections` (gauge; `transport` socketio|websocket, `dialect`): open now;
//! - `palaver_events_in_total`: events and frames clients sent that the server acts on;
//! - `palaver_events_out_total` (`dialect`): events rendered and handed to a transport;
//! - `palaver_delivery_seconds` (histogram): from a message's storing to its hand-off to
//!   every transport;
//! - `palaver_pushes_total` (`outcome` sent|unregistered|failed|dropped): pushes to devices;
//! - `palaver_database_errors_total` (`kind` unreachable|other) and
//!   `palaver_redis_errors_total`;
//! - `palaver_rate_limited_total` (`scope` connection|user|http|connections): refusals for
//!   going too fast, or for holding too many connections from one address.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CONNECTIONS: &str = "palaver_connections";
pub const EVENTS_IN: &str = "palaver_events_in_total";
pub const EVENTS_OUT: &str = "palaver_events_out_total";
pub const DELIVERY_SECONDS: &str = "palaver_delivery_seconds";
pub const PUSHES: &str = "palaver_pushes_total";
pub const DATABASE_ERRORS: &str = "palaver_database_errors_total";
pub const RATE_LIMITED: &str = "palaver_rate_limited_total";

/// Delivery buckets: a few milliseconds when all is well, seconds when it is not.
const DELIVERY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process's recorder, installed on first use (one per process, whatever the servers in
/// it: the tests run several).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.into()), &DELIVERY_BUCKETS)
            .expect("the delivery buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!("metrics are recorded elsewhere in this process: {e}");
        }
        handle
    })
}

/// Start recording (before the first connection, so that nothing is missed).
pub fn install() {
    handle();
}

/// Everything recorded so far, as Prometheus text.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}
