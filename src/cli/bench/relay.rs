//! The baseline of the router bench: a plain lapin relay that consumes one
//! queue and republishes each message to another with a publisher confirm,
//! acking the input only after the confirm — the least any router must do.

use std::sync::Arc;

use anyhow::Context as _;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions,
    },
    types::FieldTable,
};
use tokio::task::JoinHandle;

/// A running relay from `input` to `output` (both queues, default exchange).
pub(crate) struct Relay {
    connection: Connection,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts relaying with `prefetch` messages in flight.
    pub(crate) async fn start(
        url: &str,
        input: &str,
        output: &str,
        prefetch: u16,
    ) -> anyhow::Result<Self> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .context("connecting the relay")?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let consumer_channel = connection.create_channel().await?;
        consumer_channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = consumer_channel
            .basic_consume(
                input.into(),
                "relay".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (publisher, output) = (Arc::new(publisher), Arc::new(output.to_owned()));
        let task = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let (publisher, output) = (Arc::clone(&publisher), Arc::clone(&output));
                tokio::spawn(async move {
                    if relay_one(
                        &publisher,
                        &output,
                        &delivery.data,
                        delivery.properties.clone(),
                    )
                    .await
                    {
                        delivery.ack(BasicAckOptions::default()).await.ok();
                    }
                });
            }
        });
        Ok(Self { connection, task })
    }

    /// Stops the relay and closes its connection.
    pub(crate) async fn stop(self) {
        self.task.abort();
        self.connection.close(200, "bench done".into()).await.ok();
    }
}

async fn relay_one(
    publisher: &Channel,
    output: &str,
    data: &[u8],
    properties: BasicProperties,
) -> bool {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    match publisher
        .basic_publish("".into(), output.into(), options, data, properties)
        .await
    {
        Ok(confirm) => matches!(confirm.await, Ok(c) if c.is_ack()),
        Err(_) => false,
    }
}
