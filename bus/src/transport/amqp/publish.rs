//! Publishing with mandatory routing and publisher confirms.
//!
//! Publishes share one confirm-mode channel and are pipelined: each caller
//! awaits only its own confirm, so many publishes are in flight at once.

use lapin::{Confirmation, options::BasicPublishOptions};

use crate::{address::Address, envelope::Envelope, error::TransportError};

use super::{
    connect::{self, Connector},
    convert, topology,
};

/// Publishes `envelope` to `to` and waits for the broker's verdict.
pub(super) async fn publish(
    connector: &Connector,
    to: &Address,
    envelope: &Envelope,
) -> Result<(), TransportError> {
    let properties = convert::properties(envelope)?;
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
    let confirmation = tokio::time::timeout(connector.config().confirm_timeout, publish)
        .await
        .map_err(|_| TransportError::ConnectionLost {
            operation: "publish confirm (timed out)",
            source: None,
        })??;
    let (exchange, routing_key) = (to.exchange.clone(), to.routing_key.clone());
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_returned)) => Err(TransportError::Unroutable {
            exchange,
            routing_key,
        }),
        Confirmation::Nack(_) => Err(TransportError::Nacked {
            exchange,
            routing_key,
        }),
        Confirmation::NotRequested => Err(TransportError::ConnectionLost {
            operation: "publish (channel not in confirm mode)",
            source: None,
        }),
    }
}

/// Checks on a throwaway channel that `exchange` exists, and remembers it.
async fn check_exchange(connector: &Connector, exchange: &str) -> Result<(), TransportError> {
    let link = connector.link().await?;
    let channel = connect::open_channel(&link.connection, "check").await?;
    topology::exchange_exists(&channel, exchange).await?;
    connector.remember_exchange(exchange);
    if let Err(e) = channel.close(200, "done".into()).await {
        tracing::debug!(error = %e, "Closing the check channel failed.");
    }
    Ok(())
}
