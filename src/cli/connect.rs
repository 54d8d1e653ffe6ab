//! Broker options shared by the commands that talk to a running bus.

use std::sync::Arc;

use clap::Args;
use tollgate_bus::{
    AmqpConfig, AmqpTransport, BusNames, DEFAULT_NAMESPACE, QueueKind, Transport,
    config::DEFAULT_AMQP_URL,
};

use super::exit::{Exit, UNREACHABLE};

/// `--amqp` and `--namespace`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BusArgs {
    /// RabbitMQ URL, or one per cluster node separated by commas.
    #[arg(long, env = "TOLLGATE_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    pub(crate) amqp: String,
    /// The bus's namespace.
    #[arg(long, env = "TOLLGATE_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub(crate) namespace: String,
    /// Type of the bus's shared queues: `classic` (one node) or `quorum` (a
    /// cluster); the same as the routers' `queue_type`.
    #[arg(long, env = "TOLLGATE_QUEUE_TYPE", default_value = "classic")]
    pub(crate) queue_type: QueueKind,
}

impl BusArgs {
    /// Connects, or fails with exit code 5.
    pub(crate) async fn connect(&self, name: &str) -> Result<Arc<dyn Transport>, Exit> {
        let config = AmqpConfig::new(&self.amqp).with_connection_name(name);
        match AmqpTransport::connect(config).await {
            Ok(t) => Ok(Arc::new(t)),
            Err(e) => Err(Exit::new(
                UNREACHABLE,
                format!(
                    "cannot reach RabbitMQ at {}: {e}",
                    super::serve::redact(&self.amqp)
                ),
            )),
        }
    }

    /// The bus's names.
    pub(crate) fn names(&self) -> BusNames {
        BusNames::new(self.namespace.clone()).with_queue_type(self.queue_type)
    }
}
