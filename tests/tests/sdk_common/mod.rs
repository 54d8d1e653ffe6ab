//! What the SDK tests share: a memory bus with the real router (a
//! [`TestBus`] from a real config), a caller, and helpers to wait for messages.
//!
//! Callers present real tokens minted for the config's consumers; services
//! register with real registration tokens and the grants of the config;
//! requests pass the router's gate and replies come back through its reply
//! path.

// Test code: a failed expectation should panic loudly.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use tollgate_auth::{AssertionSigner, Identity, generate_assertion_key};
use tollgate_bus::{BusNames, Delivery, Subscription, Transport};
use tollgate_services::{Caller, RequestOptions, RunningService, ServiceBuilder};
use tollgate_tests::support::{Fixture, TestBus};

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(15);

/// An identity as the router attaches it for `consumer`'s token, for
/// assertions signed around the router.
pub fn identity_of(consumer: &str) -> Identity {
    let mut who = Identity::new(consumer)
        .with_subject(format!("{consumer}-user"))
        .with_scopes(["orders.write"]);
    who.token_id = Some(uuid::Uuid::new_v4().to_string());
    who
}

/// A signer with a key of its own, not the bus's: its assertions are forgeries.
pub fn foreign_signer() -> AssertionSigner {
    let (private, _) = generate_assertion_key().unwrap();
    AssertionSigner::from_pem(private.as_bytes()).unwrap()
}

/// The next delivery of `sub`, or a panic naming what was awaited.
pub async fn recv(sub: &mut Subscription, what: &str) -> Delivery {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("subscription ended while waiting for {what}"),
        Err(_) => panic!("nothing within {WAIT:?} while waiting for {what}"),
    }
}

/// Whether nothing arrives on `sub` within `quiet` (for "must not happen" checks,
/// after something that must happen has been awaited).
pub async fn stays_quiet(sub: &mut Subscription, quiet: Duration) -> bool {
    tokio::time::timeout(quiet, sub.next()).await.is_err()
}

/// A memory bus with the real router and a caller on its own connection.
pub struct Bus {
    pub fx: Fixture,
    pub names: BusNames,
    /// The router, its config, keys and tokens.
    pub router: TestBus,
    pub caller: Caller,
}

/// A fresh [`Bus`] on the memory transport.
pub async fn bus() -> Bus {
    bus_with("").await
}

/// Like [`bus`], with `extra_toml` added to the router's config (see
/// [`TestBus::start_with`]).
pub async fn bus_with(extra_toml: &str) -> Bus {
    let fx = Fixture::memory().await;
    let router = TestBus::start_with(&fx, extra_toml).await;
    let names = router.names.clone();
    let caller = Caller::connect(fx.connect().await, names.clone())
        .await
        .unwrap();
    Bus {
        fx,
        names,
        router,
        caller,
    }
}

impl Bus {
    /// Request options carrying a valid token of `consumer`.
    pub fn as_consumer(&self, consumer: &str) -> RequestOptions {
        RequestOptions::with_token(self.router.token(consumer))
    }

    /// Runs the service `builder` builds on the fixture's transport and
    /// waits until the router routes to it.
    pub async fn serve(&self, builder: ServiceBuilder) -> RunningService {
        self.serve_on(Arc::clone(self.fx.transport()), builder)
            .await
    }

    /// Like [`Bus::serve`], on `transport`.
    pub async fn serve_on(
        &self,
        transport: Arc<dyn Transport>,
        builder: ServiceBuilder,
    ) -> RunningService {
        let service = builder.build().unwrap();
        let name = service.name().to_owned();
        let running = service.run(transport, self.names.clone()).await.unwrap();
        self.router.wait_registered(&name).await;
        running
    }
}
