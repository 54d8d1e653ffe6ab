//! Declaring and deleting exchanges, queues and bindings on RabbitMQ.

use tollgate_wire::{AMQPValue, Channel, FieldTable, LongString, QueueOptions};

use crate::{
    error::TransportError,
    topology::{ExchangeKind, ExchangeSpec, Overflow, QueueKind, QueueSpec, Topology},
    transport::QueueInfo,
};

use super::convert::error;

/// Declares everything of `topology` on `channel`, in order.
pub(super) async fn declare(channel: &Channel, topology: &Topology) -> Result<(), TransportError> {
    for e in &topology.exchanges {
        declare_exchange(channel, e).await?;
    }
    for q in &topology.queues {
        let options = QueueOptions {
            durable: q.durable,
            exclusive: q.exclusive,
            auto_delete: q.auto_delete,
            ..QueueOptions::default()
        };
        channel
            .queue_declare(&q.name, options, queue_arguments(q))
            .await
            .map_err(|e| error(e, "queue.declare", ("queue", &q.name)))?;
    }
    for b in &topology.bindings {
        channel
            .queue_bind(&b.queue, &b.exchange, &b.pattern, FieldTable::default())
            .await
            .map_err(|e| {
                error(
                    e,
                    "queue.bind",
                    ("exchange or queue", &format!("{}→{}", b.exchange, b.queue)),
                )
            })?;
    }
    Ok(())
}

async fn declare_exchange(channel: &Channel, e: &ExchangeSpec) -> Result<(), TransportError> {
    let kind = match e.kind {
        ExchangeKind::Direct => "direct",
        ExchangeKind::Topic => "topic",
        ExchangeKind::Fanout => "fanout",
    };
    channel
        .exchange_declare(&e.name, kind, false, e.durable, FieldTable::default())
        .await
        .map_err(|err| error(err, "exchange.declare", ("exchange", &e.name)))
}

/// Deletes the queues, then the exchanges, of `topology` on `channel`.
pub(super) async fn delete(channel: &Channel, topology: &Topology) -> Result<(), TransportError> {
    for q in &topology.queues {
        channel
            .queue_delete(&q.name)
            .await
            .map_err(|e| error(e, "queue.delete", ("queue", &q.name)))?;
    }
    for e in &topology.exchanges {
        channel
            .exchange_delete(&e.name)
            .await
            .map_err(|err| error(err, "exchange.delete", ("exchange", &e.name)))?;
    }
    Ok(())
}

/// Passively declares `name`: its counts, or `NotFound` (which closes `channel`).
pub(super) async fn inspect(channel: &Channel, name: &str) -> Result<QueueInfo, TransportError> {
    let options = QueueOptions {
        passive: true,
        ..QueueOptions::default()
    };
    let q = channel
        .queue_declare(name, options, FieldTable::default())
        .await
        .map_err(|e| error(e, "queue.declare", ("queue", name)))?;
    Ok(QueueInfo {
        messages: q.messages,
        consumers: q.consumers,
    })
}

/// Passively declares exchange `name`; `NotFound` (which closes `channel`) if it is missing.
pub(super) async fn exchange_exists(channel: &Channel, name: &str) -> Result<(), TransportError> {
    channel
        .exchange_declare(name, "direct", true, false, FieldTable::default())
        .await
        .map_err(|e| error(e, "exchange.declare", ("exchange", name)))
}

/// RabbitMQ's `x-` arguments for a queue spec.
fn queue_arguments(q: &QueueSpec) -> FieldTable {
    let mut args = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    if q.kind == QueueKind::Quorum {
        args.insert("x-queue-type".into(), text("quorum"));
    }
    if let Some(dl) = &q.dead_letter {
        args.insert("x-dead-letter-exchange".into(), text(&dl.exchange));
        if let Some(key) = &dl.routing_key {
            args.insert("x-dead-letter-routing-key".into(), text(key));
        }
    }
    if let Some(max) = q.max_length {
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(max.into()));
    }
    if let Some(max) = q.max_length_bytes {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        args.insert("x-max-length-bytes".into(), AMQPValue::LongLongInt(max));
    }
    if q.max_length.is_some() || q.max_length_bytes.is_some() {
        let overflow = match q.overflow {
            Overflow::DropHead => "drop-head",
            Overflow::RejectPublish => "reject-publish",
        };
        args.insert("x-overflow".into(), text(overflow));
    }
    if let Some(limit) = q.delivery_limit {
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(limit.into()),
        );
    }
    if let Some(ttl) = q.message_ttl {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms));
    }
    if q.single_active_consumer {
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_queue_arguments_carry_type_limit_and_dead_letter() {
        let q = QueueSpec::quorum("q")
            .delivery_limit(3)
            .dead_letter_to("dlx", Some("dead"));
        let args = queue_arguments(&q);
        assert!(args.contains_key("x-queue-type"));
        assert_eq!(
            args.inner().get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(3))
        );
        assert!(args.contains_key("x-dead-letter-routing-key"));
    }

    #[test]
    fn a_bounded_queue_carries_both_bounds_and_its_overflow() {
        let q = QueueSpec::classic("q")
            .max_length(10, Overflow::DropHead)
            .max_length_bytes(1 << 30, Overflow::DropHead);
        let args = queue_arguments(&q);
        let arg = |name: &str| args.inner().get(name).cloned();
        assert_eq!(arg("x-max-length"), Some(AMQPValue::LongLongInt(10)));
        assert_eq!(
            arg("x-max-length-bytes"),
            Some(AMQPValue::LongLongInt(1 << 30))
        );
        assert_eq!(
            arg("x-overflow"),
            Some(AMQPValue::LongString("drop-head".into()))
        );
        let only_bytes =
            queue_arguments(&QueueSpec::classic("q").max_length_bytes(5, Overflow::DropHead));
        assert!(only_bytes.contains_key("x-overflow"));
        assert!(!only_bytes.contains_key("x-max-length"));
    }

    #[test]
    fn a_plain_classic_queue_has_no_arguments() {
        assert!(queue_arguments(&QueueSpec::classic("q")).inner().is_empty());
    }
}
