//! A request the ingress queue dead-lettered at its delivery limit gets
//! more chances.
//!
//! A quorum queue counts a delivery attempt for every message a consumer
//! held unacked when its channel or connection closed (up to RabbitMQ 4.2),
//! so a router cut off five times while it held a request — prefetched, or
//! a call held until its reply — sees the broker dead-letter that request
//! `delivery_limit` though nothing ever refused it. The router that takes it
//! from `<ns>.poison` publishes it to the ingress exchange again, with its
//! first routing key, counting such returns in
//! [`headers::LIMIT_RETURNS`]; after [`MAX_LIMIT_RETURNS`] it is recorded as
//! a dead letter, as before. A request that keeps crashing the routers thus
//! ends after `(MAX_LIMIT_RETURNS + 1) ×` the delivery limit attempts
//! instead of one limit's worth.
//!
//! A caller can set the header itself (it is reserved: the gate strips it
//! before delivery, but the ingress copy keeps it): it only shortens its own
//! request's chances.

use crate::{envelope::Envelope, header_map::HeaderValue, headers, names::BusNames};

/// Returns to the ingress after a delivery-limit dead-lettering, at most.
pub(super) const MAX_LIMIT_RETURNS: i64 = 3;

/// Where `raw`, taken from the poison queue, goes back to if it is a
/// request the ingress queue dead-lettered at its delivery limit with
/// returns to spare: its first routing key (the route it was sent to) and
/// the copy to publish to the ingress exchange — the broker's headers gone,
/// the returns counted.
pub(super) fn returned_to_ingress(raw: &Envelope, names: &BusNames) -> Option<(String, Envelope)> {
    let latest = headers::latest_death(&raw.headers)?;
    if latest.get_str("reason")? != "delivery_limit"
        || latest.get_str("queue")? != names.ingress_queue()
    {
        return None;
    }
    let routing_key = latest
        .get("routing-keys")?
        .as_array()?
        .first()?
        .as_str()?
        .to_owned();
    let returns = raw
        .headers
        .get(headers::LIMIT_RETURNS)
        .and_then(HeaderValue::as_i64)
        .unwrap_or(0);
    if !(0..MAX_LIMIT_RETURNS).contains(&returns) {
        return None;
    }
    let mut copy = raw.clone();
    copy.headers
        .retain(|name, _| !headers::is_broker_header(name));
    copy.headers.insert(headers::LIMIT_RETURNS, returns + 1);
    Some((routing_key, copy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header_map::Headers;

    fn dead_lettered(reason: &str, queue: &str, returns: Option<i64>) -> Envelope {
        let mut raw = Envelope::new("body");
        let death = Headers::new()
            .with("count", 1i64)
            .with("reason", reason)
            .with("queue", queue)
            .with("routing-keys", vec![HeaderValue::from("orders.create")]);
        raw.headers
            .insert(headers::X_DEATH, vec![HeaderValue::Table(death)]);
        raw.headers.insert(headers::X_FIRST_DEATH_REASON, reason);
        if let Some(n) = returns {
            raw.headers.insert(headers::LIMIT_RETURNS, n);
        }
        raw
    }

    #[test]
    fn an_ingress_request_at_its_delivery_limit_goes_back_counted() {
        let names = BusNames::new("tg");
        let (key, copy) =
            returned_to_ingress(&dead_lettered("delivery_limit", "tg.ingress", None), &names)
                .unwrap();
        assert_eq!(key, "orders.create");
        assert_eq!(
            copy.headers
                .get(headers::LIMIT_RETURNS)
                .and_then(HeaderValue::as_i64),
            Some(1)
        );
        assert!(copy.headers.get(headers::X_DEATH).is_none());
        assert!(copy.headers.get(headers::X_FIRST_DEATH_REASON).is_none());
        let again = dead_lettered("delivery_limit", "tg.ingress", Some(MAX_LIMIT_RETURNS - 1));
        assert!(returned_to_ingress(&again, &names).is_some());
    }

    #[test]
    fn nothing_else_goes_back() {
        let names = BusNames::new("tg");
        for raw in [
            dead_lettered("delivery_limit", "tg.ingress", Some(MAX_LIMIT_RETURNS)),
            dead_lettered("delivery_limit", "tg.ingress", Some(-1)),
            dead_lettered("rejected", "tg.ingress", None),
            dead_lettered("delivery_limit", "tg.svc.orders", None),
            Envelope::new("no death"),
        ] {
            assert!(
                returned_to_ingress(&raw, &names).is_none(),
                "{:?}",
                raw.headers
            );
        }
    }
}
