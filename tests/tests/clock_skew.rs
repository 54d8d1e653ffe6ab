//! A service whose clock is behind the router's: the real router on the
//! memory transport, the example `orders` service checking assertions with a
//! clock 10 s behind. With the default leeway (5 s) every request is refused
//! as `not_from_bus`; with 15 s it is served. Either way the skew is logged
//! (warn) and exported as `tollgate_clock_skew_seconds`.

#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tollgate_auth::{AssertionVerifier, Clock, SystemClock};
use tollgate_services::{CallError, Caller, RequestOptions};
use tollgate_tests::support::{Fixture, TestBus};

/// The service's clock: the system's, `offset` seconds off.
#[derive(Debug)]
struct Skewed(i64);

impl Clock for Skewed {
    fn now(&self) -> u64 {
        SystemClock.now().saturating_add_signed(self.0)
    }
}

/// Every warning this test process logs, as JSON lines (installed once:
/// the service's tasks run on any worker thread).
fn warnings() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tracing_subscriber::fmt()
            .json()
            .with_env_filter("warn")
            .with_writer(move || Sink(Arc::clone(&sink)))
            .init();
        log
    }))
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's metrics, rendered as Prometheus text.
fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        tollgate_bus::events::prometheus_builder()
            .unwrap()
            .install_recorder()
            .unwrap()
    })
}

/// The skew warnings logged so far.
fn skew_warnings() -> Vec<Value> {
    let log = warnings();
    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["fields"]["skew_secs"].is_i64())
        .collect()
}

/// Three `orders.create` through the router to an `orders` service whose
/// clock is 10 s behind, with `leeway` if given; the last outcome, once all
/// three had the same.
async fn call_with_a_clock_10s_behind(leeway: Option<Duration>) -> Result<Value, CallError> {
    let fx = Fixture::memory().await;
    let bus = TestBus::start(&fx).await;
    let key = AssertionVerifier::from_public_pem(bus.assertion_public_pem.as_bytes())
        .unwrap()
        .with_clock(Arc::new(Skewed(-10)));
    let orders = bus
        .run_orders(fx.connect().await, |builder| {
            let builder = builder.bus_key(key);
            match leeway {
                Some(leeway) => builder.assertion_leeway(leeway),
                None => builder,
            }
        })
        .await;
    let caller = Caller::connect(fx.connect().await, bus.names.clone())
        .await
        .unwrap();
    let options = RequestOptions::with_token(bus.token("web"))
        .timeout(Duration::from_secs(10))
        .schema_version("2");
    let body = json!({"customer": {"id": "c-1"}, "items": [{"sku": "widget", "qty": 2}]});
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            caller
                .request::<_, Value>("orders.create", &body, &options)
                .await,
        );
    }
    let codes: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().map_err(CallError::code).map(|_| ()))
        .collect();
    assert!(codes.windows(2).all(|w| w[0] == w[1]), "{codes:?}");
    let outcome = outcomes.pop().unwrap();
    orders.shutdown().await.unwrap();
    bus.stop().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_clock_10s_behind_is_refused_with_the_default_leeway_served_with_15s_and_logged()
{
    warnings();
    let metrics = metrics();

    let refused = call_with_a_clock_10s_behind(None).await;
    match refused {
        Err(CallError::Rejected { code, stage, .. }) => {
            assert_eq!((code.as_str(), stage.as_str()), ("not_from_bus", "service"));
        }
        other => panic!("expected not_from_bus, got {other:?}"),
    }
    let warned = skew_warnings();
    assert_eq!(
        warned.len(),
        1,
        "one warning for three messages: {warned:?}"
    );
    let fields = &warned[0]["fields"];
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(fields["service"], "orders");
    assert_eq!(fields["leeway_secs"], 5);
    assert_eq!(fields["refused"], true, "{fields}");
    // The first check the assertion fails is its lifetime, measured from a late clock.
    assert_eq!(fields["code"], "claims_invalid", "{fields}");
    // 10 s behind, give or take the second the message took.
    let skew = fields["skew_secs"].as_i64().unwrap();
    assert!((-11..=-9).contains(&skew), "estimated skew {skew}");
    let page = metrics.render();
    let gauge = page
        .lines()
        .find(|l| l.starts_with("tollgate_clock_skew_seconds{service=\"orders\"}"))
        .unwrap_or_else(|| panic!("no skew gauge:\n{page}"));
    let value: f64 = gauge.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((-11.0..=-9.0).contains(&value), "{gauge}");

    let served = call_with_a_clock_10s_behind(Some(Duration::from_secs(15))).await;
    let created = served.unwrap_or_else(|e| panic!("served with 15 s of leeway: {e:?}"));
    assert_eq!(created["placed_by"], "web", "{created}");
    let warned = skew_warnings();
    assert_eq!(warned.len(), 2, "a new service warns once too: {warned:?}");
    assert_eq!(warned[1]["fields"]["refused"], false);
    assert_eq!(warned[1]["fields"]["leeway_secs"], 15);
}

#[test]
fn a_leeway_above_300s_is_refused_when_the_service_is_built() {
    let key = AssertionVerifier::from_public_pem(
        tollgate_auth::generate_assertion_key()
            .unwrap()
            .1
            .as_bytes(),
    )
    .unwrap();
    let built = tollgate_services::examples::orders::service("token".to_owned(), key)
        .assertion_leeway(Duration::from_secs(301))
        .build();
    match built {
        Err(e) => assert_eq!(e.code(), "leeway_out_of_range"),
        Ok(_) => panic!("a 301 s leeway was accepted"),
    }
}
