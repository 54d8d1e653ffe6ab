//! The service SDK and the caller on the memory transport, with the real router:
//! calls and their errors (`calls`), messages around the router and service
//! mode (`guard`), registration, shutdown and poison messages (`lifecycle`).

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

#[path = "../sdk_common/mod.rs"]
mod sdk_common;

mod calls;
mod guard;
mod lifecycle;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sdk_common::{Bus, bus, foreign_signer, identity_of, recv, stays_quiet};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tollgate_auth::{
    Algorithm,
    testkit::{TestClock, TestKit},
};
use tollgate_bus::{
    Address, Envelope, ErrorBody, ReplyKey, SubscribeOptions, bus_topology, headers,
    registry::Announcement,
};
use tollgate_services::{
    CallError, HandlerError, Request, RequestOptions, Service, ServiceBuilder,
};
use tollgate_tests::support::{Fixture, TestBus, wait_until};

#[derive(Debug, Serialize, Deserialize)]
struct Create {
    item: String,
    qty: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Created {
    item: String,
    qty: u32,
    by: String,
}

/// `orders.create`: refuses a quantity of 0 with `out_of_stock`; `orders.explode` panics.
/// Registered as `orders-svc`, verifying the bus's assertions.
fn orders(router: &TestBus, calls: Arc<AtomicUsize>) -> ServiceBuilder {
    let explode_calls = Arc::clone(&calls);
    Service::builder("orders")
        .credential(router.registration_token("orders-svc"))
        .bus_key(router.bus_key())
        .handler("create", move |req: Request<Create>| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if req.body.qty == 0 {
                    return Err(HandlerError::new("out_of_stock", "none left"));
                }
                Ok(Created {
                    item: req.body.item,
                    qty: req.body.qty,
                    by: req.identity.consumer,
                })
            }
        })
        .handler("explode", move |req: Request<Create>| {
            explode_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if req.body.qty > 0 {
                    panic!("the handler exploded");
                }
                Ok::<_, HandlerError>(())
            }
        })
}

/// Options carrying a valid token of `alice` (allowed on `orders.*` and `calc.*`).
fn as_alice(bus: &Bus) -> RequestOptions {
    bus.as_consumer("alice")
}

fn create(item: &str, qty: u32) -> Create {
    Create {
        item: item.into(),
        qty,
    }
}

fn rejected_code(result: Result<Created, CallError>) -> (String, String) {
    match result {
        Err(CallError::Rejected { code, stage, .. }) => (code, stage),
        other => panic!("expected a rejection, got {other:?}"),
    }
}
