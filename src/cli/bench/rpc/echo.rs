//! The service every `bench rpc` call reaches: an SDK service whose one
//! method replies with a small JSON object.

use serde::Serialize;
use tollgate_services::{Request, Service};

use crate::cli::bench::{
    bench_bus::{BenchBus, ECHO},
    payload::Padded,
};

use super::scenario::Scenario;

/// The route the bench calls.
pub(crate) const ROUTE: &str = "echo.call";

/// The reply body.
#[derive(Debug, Serialize)]
struct Echoed {
    /// How many bytes of padding arrived.
    received: usize,
}

/// The echo service for `scenario` on `bus`, registering with `credential`:
/// it admits messages by the bus's assertion (gateway mode) or by the
/// caller's token, verified with its own verifier (service mode, and behind
/// the relay, which asserts nothing).
pub(crate) fn service(
    scenario: Scenario,
    bus: &BenchBus,
    credential: &str,
) -> anyhow::Result<Service> {
    let builder = Service::builder(ECHO)
        .credential(credential)
        .prefetch(bus.prefetch)
        .handler("call", |req: Request<Padded>| async move {
            Ok(Echoed {
                received: req.body.padding.len(),
            })
        });
    let builder = if scenario.service_verifies() {
        builder.verifier(bus.service_verifier()?)
    } else if scenario.service_holds_secret() {
        builder.service_secret(bus.service_secret(ECHO)?)
    } else {
        builder.bus_key(bus.bus_key()?)
    };
    Ok(builder.build()?)
}
