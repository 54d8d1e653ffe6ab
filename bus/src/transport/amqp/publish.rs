//! Publishing with mandatory routing and publisher confirms.
//!
//! Publishes share one confirm-mode channel and are pipelined: each caller
//! awaits only its own confirm, so many publishes are in flight at once. The
//! client gives a returned message to the publish it belongs to
//! (`tollgate_wire`'s confirms), so a return is always the publish's own.

use std::{sync::Arc, time::Duration};

use crate::{address::Address, envelope::Envelope, error::TransportError};

use super::{connect::Connector, convert, encode, topology};

/// Publishes `envelope` to `to` and waits for the broker's verdict.
pub(super) async fn publish(
    connector: &Arc<Connector>,
    to: &Address,
    envelope: &Envelope,
) -> Result<(), TransportError> {
    let properties = encode::properties(envelope, connector.user())?;
    let lost = |e| convert::error(e, "publish", ("exchange", &to.exchange));
    // One deadline for the whole publish (the exchange check, the confirm):
    // on a connection that broke under it, either can wait for an answer
    // that never comes.
    let publish = async {
        // Boxed: the check runs once per exchange, and its state (a channel
        // opened and closed) made every publish's future 2.9 KB instead of
        // 480 bytes, copied into place on each.
        if !connector.exchange_known(&to.exchange) {
            Box::pin(check_exchange(connector, &to.exchange)).await?;
        }
        let link = connector.link().await?;
        let confirm = link
            .publisher
            .publish_encoded(
                &to.exchange,
                &to.routing_key,
                true,
                Some(&envelope.id),
                &properties,
                &envelope.payload,
            )
            .map_err(lost)?;
        confirm.wait().await.map_err(lost)
    };
    let confirmation =
        unless_blocked(connector, publish)
            .await
            .ok_or(TransportError::ConnectionLost {
                operation: "publish confirm (timed out)",
                source: None,
            })??;
    if confirmation.returned.is_some() {
        Err(TransportError::Unroutable {
            exchange: to.exchange.clone(),
            routing_key: to.routing_key.clone(),
        })
    } else if confirmation.acked {
        Ok(())
    } else {
        Err(TransportError::Nacked {
            exchange: to.exchange.clone(),
            routing_key: to.routing_key.clone(),
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
    // One timer, reset at each check (an interval would allocate its timer
    // on every publish, twice per call). The first check is one period from
    // now: an immediate one still waits for the timer driver's next turn (up
    // to a millisecond), which every publish would pay.
    let check = tokio::time::sleep(BLOCKED_CHECK);
    tokio::pin!(work, check);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            () = &mut check => {
                check.as_mut().reset(tokio::time::Instant::now() + BLOCKED_CHECK);
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
