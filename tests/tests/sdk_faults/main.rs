//! A real SDK service behind a real router, under the faults of issue 12:
//! panicking handlers (`panics`), a deleted service queue (`queue_gone`), a
//! service process stopped with a dead broker connection (`sigterm`). Every
//! case counts its messages end to end.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

mod panics;
mod queue_gone;
mod sigterm;

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tollgate_bus::Transport;
use tollgate_services::{CallError, Caller, RequestOptions};
use tollgate_tests::support::TestBus;

/// How long a call waits for its reply.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A caller on its own connection, as `web` (allowed on `orders.*`).
async fn web_caller(bus: &TestBus, transport: Arc<dyn Transport>) -> (Caller, RequestOptions) {
    let caller = Caller::connect(transport, bus.names.clone()).await.unwrap();
    let options = RequestOptions::with_token(bus.token("web")).timeout(CALL_TIMEOUT);
    (caller, options)
}

/// A valid `orders.create` body.
fn order(customer: &str) -> Value {
    json!({"customer": {"id": customer}, "items": [{"sku": "widget", "qty": 1}]})
}

/// The error code of a call that must be refused.
fn refused_code(result: Result<Value, CallError>) -> String {
    match result {
        Err(CallError::Rejected { code, .. }) => code,
        other => panic!("expected an error reply, got {other:?}"),
    }
}
