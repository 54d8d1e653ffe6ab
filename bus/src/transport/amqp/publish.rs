//! Publishing with mandatory routing and publisher confirms.
//!
//! Publishes share one confirm-mode channel and are pipelined: each caller
//! awaits only its own confirm, so many publishes are in flight at once. A
//! returned message counts against its publish only if it is that publish's
//! own ([`returns`](super::returns)).

use std::{sync::Arc, time::Duration};

use lapin::{Confirmation, options::BasicPublishOptions};

use crate::{address::Address, envelope::Envelope, error::TransportError};

use super::{connect::Connector, convert, returns, topology};

/// Publishes `envelope` to `to` and waits for the broker's verdict.
pub(super) async fn publish(
    connector: &Arc<Connector>,
    to: &Address,
    envelope: &Envelope,
) -> Result<(), TransportError> {
    let properties = convert::properties(envelope, connector.user())?;
    let (exchange, routing_key) = (
        convert::short(&to.exchange)?,
        convert::short(&to.routing_key)?,
    );
    let lost = |e| convert::error(e, "publish", ("exchange", &to.exchange));
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    // One deadline for the whole publish (the exchange check, handing the
    // frames over, the confirm): on a connection that broke under it, any of
    // these can wait for an answer that never comes.
    let publish = async {
        if !connector.exchange_known(&to.exchange) {
            check_exchange(connector, &to.exchange).await?;
        }
        let link = connector.link().await?;
        let pending = link
            .publisher
            .basic_publish(
                exchange,
                routing_key,
                options,
                &envelope.payload,
                properties,
            )
            .await
            .map_err(lost)?;
        pending.await.map_err(lost)
    };
    let confirmation =
        unless_blocked(connector, publish)
            .await
            .ok_or(TransportError::ConnectionLost {
                operation: "publish confirm (timed out)",
                source: None,
            })??;
    let (exchange, routing_key) = (to.exchange.clone(), to.routing_key.clone());
    let (acked, returned) = match confirmation {
        Confirmation::Ack(returned) => (true, returned),
        Confirmation::Nack(returned) => (false, returned),
        Confirmation::NotRequested => {
            return Err(TransportError::ConnectionLost {
                operation: "publish (channel not in confirm mode)",
                source: None,
            });
        }
    };
    if let Some(returned) = returned {
        if returns::is_own(&returned, to, envelope) {
            return Err(TransportError::Unroutable {
                exchange,
                routing_key,
            });
        }
        returns::rescue(connector, returned).await;
    }
    if acked {
        Ok(())
    } else {
        Err(TransportError::Nacked {
            exchange,
            routing_key,
        })
    }
}

/// Awaits `work` for at most the confirm timeout, counting only the time the
/// broker did not block the connection: during a memory or disk alarm
/// (`connection.blocked`) a publish waits for the broker instead of timing
/// out. A timeout there would requeue the message while the broker still
/// holds the first publish, which it confirms and delivers once the alarm
/// clears — a duplicate, and on quorum queues one delivery attempt lost per
/// timeout.
async fn unless_blocked<F: Future>(connector: &Connector, work: F) -> Option<F::Output> {
    let mut left = connector.config().confirm_timeout;
    // The first check is one period from now: an interval's immediate first
    // tick still waits for the timer driver's next turn (up to a millisecond),
    // which every publish — twice per call — would pay.
    let start = tokio::time::Instant::now() + BLOCKED_CHECK;
    let mut ticks = tokio::time::interval_at(start, BLOCKED_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            _ = ticks.tick() => {
                if connector.blocked() {
                    continue;
                }
                if let Some(rest) = left.checked_sub(BLOCKED_CHECK).filter(|r| !r.is_zero()) {
                    left = rest;
                } else {
                    return None;
                }
            }
        }
    }
}

/// How often a waiting publish checks whether the broker blocks it (the
/// granularity of the confirm timeout).
const BLOCKED_CHECK: Duration = Duration::from_millis(100);

/// Checks on a throwaway channel that `exchange` exists, and remembers it.
async fn check_exchange(connector: &Arc<Connector>, exchange: &str) -> Result<(), TransportError> {
    connector
        .on_channel("exchange check (timed out)", async |channel| {
            topology::exchange_exists(channel, exchange).await
        })
        .await?;
    connector.remember_exchange(exchange);
    Ok(())
}
