//! The demo's scenario: what a platform team wants to see of a gate.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_bus::{
    Address, Envelope, ErrorBody, ReplyKey, SubscribeOptions, bus_topology, headers,
};
use tollgate_services::{CallError, RequestOptions};

use super::{bus::DemoBus, table::Row};

/// One call of the scenario.
struct Step {
    scenario: &'static str,
    route: &'static str,
    who: &'static str,
    token: Option<String>,
    schema_version: Option<&'static str>,
    body: Value,
    /// The code the bus must answer with; `None`: the call must succeed.
    expect: Option<&'static str>,
}

/// Plays every step and returns the rows.
pub(super) async fn play(bus: &DemoBus, timeout: Duration) -> anyhow::Result<Vec<Row>> {
    let t = &bus.tokens;
    let order = json!({"customer": {"id": "c-42"}, "items": [{"sku": "widget", "qty": 3}]});
    let steps = vec![
        Step {
            scenario: "valid call",
            route: "orders.create",
            who: "web",
            token: Some(t.valid("web", json!({}))?),
            schema_version: None,
            body: order.clone(),
            expect: None,
        },
        Step {
            scenario: "v2 caller, v1 service (mapped)",
            route: "billing-legacy.charge",
            who: "web",
            token: Some(t.valid("web", json!({}))?),
            schema_version: Some("2"),
            body: json!({"customer": {"id": "c-42"}, "total": {"cents": 1250}, "client_hints": {"ui": "web"}}),
            expect: None,
        },
        Step {
            scenario: "JSON caller, MessagePack service",
            route: "inventory.reserve",
            who: "web",
            token: Some(t.valid("web", json!({}))?),
            schema_version: None,
            body: json!({"sku": "widget", "qty": 2}),
            expect: None,
        },
        Step {
            scenario: "expired token",
            route: "orders.create",
            who: "web",
            token: Some(t.expired("web")?),
            schema_version: None,
            body: order.clone(),
            expect: Some("token_expired"),
        },
        Step {
            scenario: "forged signature",
            route: "orders.create",
            who: "web",
            token: Some(t.forged("web")?),
            schema_version: None,
            body: order.clone(),
            expect: Some("invalid_token"),
        },
        Step {
            scenario: "alg: none token",
            route: "orders.create",
            who: "web (unsigned)",
            token: Some(t.alg_none("web")),
            schema_version: None,
            body: order.clone(),
            expect: Some("invalid_token"),
        },
        Step {
            scenario: "no credential",
            route: "orders.create",
            who: "nobody",
            token: None,
            schema_version: None,
            body: order.clone(),
            expect: Some("token_missing"),
        },
        Step {
            scenario: "valid token, scope missing",
            route: "orders.create",
            who: "web (scope billing.read)",
            token: Some(t.valid("web", json!({"scope": "billing.read"}))?),
            schema_version: None,
            body: order.clone(),
            expect: Some("forbidden"),
        },
        Step {
            scenario: "route not granted",
            route: "orders.create",
            who: "reporting",
            token: Some(t.valid("reporting", json!({}))?),
            schema_version: None,
            body: order.clone(),
            expect: Some("forbidden"),
        },
        Step {
            scenario: "unknown service",
            route: "shipping.track",
            who: "web",
            token: Some(t.valid("web", json!({}))?),
            schema_version: None,
            body: json!({"order_id": "o-1"}),
            expect: Some("no_route"),
        },
        Step {
            scenario: "handler error",
            route: "inventory.reserve",
            who: "web",
            token: Some(t.valid("web", json!({}))?),
            schema_version: None,
            body: json!({"sku": "widget", "qty": 1_000_000}),
            expect: Some("out_of_stock"),
        },
    ];
    let mut rows = Vec::new();
    for step in steps {
        rows.push(call(bus, step, timeout).await);
    }
    rows.extend(super::central::play(bus, timeout).await?);
    rows.push(around_the_router(bus, timeout).await?);
    Ok(rows)
}

async fn call(bus: &DemoBus, step: Step, timeout: Duration) -> Row {
    let mut options = match &step.token {
        Some(token) => RequestOptions::with_token(token.clone()),
        None => RequestOptions::default(),
    }
    .timeout(timeout);
    if let Some(v) = step.schema_version {
        options = options.schema_version(v);
    }
    let body = serde_json::to_vec(&step.body).unwrap_or_default();
    let sent = format!("{} as {}", step.route, step.who);
    let result = bus
        .caller
        .request_raw(step.route, Envelope::new(body), &options)
        .await;
    let (outcome, code, detail) = match result {
        Ok(reply) => (
            "delivered",
            None,
            String::from_utf8_lossy(&reply.payload).into_owned(),
        ),
        Err(CallError::Rejected {
            code,
            stage,
            message,
        }) => ("refused", Some(code), format!("{message} [{stage}]")),
        Err(other) => ("failed", Some(other.code().to_owned()), other.to_string()),
    };
    let as_expected = code.as_deref() == step.expect;
    Row {
        scenario: step.scenario,
        sent,
        outcome,
        code: code.unwrap_or_else(|| "-".into()),
        detail,
        as_expected,
    }
}

/// A message published straight onto the orders service's queue, with a
/// forged identity: the service refuses it because no router vouched for it.
async fn around_the_router(bus: &DemoBus, timeout: Duration) -> anyhow::Result<Row> {
    let names = bus.names();
    let key = ReplyKey::generate();
    bus.raw
        .declare(&bus_topology::caller(names, key.id()))
        .await?;
    let mut replies = bus
        .raw
        .subscribe(&key.queue(names), SubscribeOptions::default())
        .await?;
    let mut forged =
        Envelope::new(br#"{"customer":{"id":"c-1"},"items":[{"sku":"widget","qty":1}]}"#.to_vec())
            .with_content_type("application/json")
            .with_correlation_id("outsider-1");
    key.attach(names, &mut forged);
    forged.headers.insert(headers::ROUTE, "orders.create");
    forged.headers.insert(headers::CONSUMER, "admin");
    forged.headers.insert(
        headers::ASSERTION,
        "eyJhbGciOiJFZERTQSJ9.eyJjb25zdW1lciI6ImFkbWluIn0.Zm9yZ2Vk",
    );
    bus.raw
        .publish(&Address::queue(names.service_queue("orders")), &forged)
        .await?;
    let reply = tokio::time::timeout(timeout, replies.next())
        .await
        .ok()
        .flatten();
    let (outcome, code, detail) = match reply
        .as_ref()
        .and_then(|d| ErrorBody::from_envelope(&d.envelope))
    {
        Some(body) => (
            "refused",
            body.error.code,
            format!("{} [{}]", body.error.message, body.error.stage),
        ),
        None => (
            "no reply",
            "-".to_owned(),
            "the service did not answer".to_owned(),
        ),
    };
    if let Some(d) = reply {
        d.ack().await.ok();
    }
    Ok(Row {
        scenario: "published around the router",
        sent: "straight onto the orders queue".to_owned(),
        outcome,
        as_expected: code == "not_from_bus",
        code,
        detail,
    })
}
