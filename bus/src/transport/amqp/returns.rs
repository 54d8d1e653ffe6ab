//! A returned message belongs to the publish it names, not to the confirm
//! lapin handed it to.
//!
//! lapin (4.12) queues the broker's `basic.return`s per channel and gives
//! each to whichever publisher confirm it completes next: on a multiple ack,
//! or when an earlier publish's confirm arrives between a return and its own
//! ack, a routable publish receives an unroutable one's return. Taken at its
//! word, the routable message would look unroutable (the router would refuse
//! a message its service also receives) and the unroutable one delivered —
//! lost. So a publish compares the returned message with its own: a return
//! that is not its own means it was routed; the foreign message, whose own
//! publish heard "delivered", goes to the rescue queue
//! ([`AmqpConfig::return_rescue`](super::AmqpConfig::return_rescue)), marked
//! with [`headers::RETURNED`], [`headers::RETURNED_EXCHANGE`] and
//! [`headers::RETURNED_KEY`]. Each return reaches exactly one confirm, so
//! each unroutable message is either reported to its publisher or rescued,
//! once.

use std::sync::Arc;

use lapin::{
    BasicProperties,
    message::BasicReturnMessage,
    options::BasicPublishOptions,
    types::{AMQPValue, LongString},
};

use crate::{address::Address, envelope::Envelope, error::TransportError, headers};

use super::{connect::Connector, topology};

/// Whether `returned` is the message published as `envelope` to `to`: the
/// same exchange, routing key, message id, correlation id and body.
pub(super) fn is_own(returned: &BasicReturnMessage, to: &Address, envelope: &Envelope) -> bool {
    let message = &returned.delivery;
    let properties = &message.properties;
    message.exchange.as_str() == to.exchange
        && message.routing_key.as_str() == to.routing_key
        && properties.message_id().as_ref().map(|id| id.as_str()) == Some(envelope.id.as_str())
        && properties.correlation_id().as_ref().map(|id| id.as_str())
            == envelope.correlation_id.as_deref()
        && message.data == envelope.payload
}

/// Keeps a message whose return reached another publish: in the rescue queue
/// when one is configured and exists, else it is logged as lost.
pub(super) async fn rescue(connector: &Arc<Connector>, returned: BasicReturnMessage) {
    let message = &returned.delivery;
    let origin = format!(
        "{} {}: exchange `{}`, key `{}`",
        returned.reply_code,
        returned.reply_text,
        message.exchange.as_str(),
        message.routing_key.as_str()
    );
    let id = message
        .properties
        .message_id()
        .as_ref()
        .map_or("", |id| id.as_str())
        .to_owned();
    let Some(queue) = connector.config().return_rescue.clone() else {
        tracing::error!(msg.id = %id, returned = %origin, "A message the broker returned as unroutable was reported delivered to its publisher (lapin gave the return to another publish) and no rescue queue is configured: it is lost.");
        return;
    };
    match publish_rescued(connector, &queue, returned).await {
        Ok(()) => {
            tracing::warn!(msg.id = %id, returned = %origin, queue = %queue, "A returned message reached another publish's confirm; kept in the rescue queue.");
        }
        Err(e) => {
            tracing::error!(msg.id = %id, returned = %origin, queue = %queue, error = %e, "A message the broker returned as unroutable was reported delivered to its publisher, and rescuing it failed: it is lost.");
        }
    }
}

/// Publishes the returned message, marked, into `queue` (which must exist:
/// checked first, so that the rescue itself is never returned), with a confirm.
async fn publish_rescued(
    connector: &Arc<Connector>,
    queue: &str,
    returned: BasicReturnMessage,
) -> Result<(), TransportError> {
    connector
        .on_channel("rescue queue check (timed out)", async |channel| {
            topology::inspect(channel, queue).await
        })
        .await?;
    let link = connector.link().await?;
    let returned_because = format!("{} {}", returned.reply_code, returned.reply_text);
    let BasicReturnMessage { delivery, .. } = returned;
    let properties = marked(&delivery, &returned_because);
    let lost = |e| super::convert::error(e, "rescue publish", ("queue", queue));
    let confirm = link
        .publisher
        .basic_publish(
            "".into(),
            super::convert::short(queue)?,
            BasicPublishOptions::default(),
            &delivery.data,
            properties,
        )
        .await
        .map_err(lost)?;
    match confirm.await.map_err(lost)? {
        lapin::Confirmation::Ack(_) => Ok(()),
        _ => Err(TransportError::Nacked {
            exchange: String::new(),
            routing_key: queue.to_owned(),
        }),
    }
}

/// The returned message's properties with the `x-tollgate-returned*`
/// headers added: why, and where it had been published.
fn marked(message: &lapin::message::Delivery, because: &str) -> BasicProperties {
    let mut table = message.properties.headers().clone().unwrap_or_default();
    for (name, value) in [
        (headers::RETURNED, because),
        (headers::RETURNED_EXCHANGE, message.exchange.as_str()),
        (headers::RETURNED_KEY, message.routing_key.as_str()),
    ] {
        table.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    message.properties.clone().with_headers(table)
}
