//! A running service instance: the consume loop, the announcer, and shutdown.

use std::sync::Arc;

use futures_util::FutureExt;
use tokio::{sync::watch, task::JoinHandle, task::JoinSet};
use tollgate_bus::Subscription;

use crate::{dispatch::Dispatcher, error::ServiceError, registration::Announcer, resume::Resumer};

/// One running instance of a [`Service`](crate::Service).
///
/// Stop it with [`shutdown`](RunningService::shutdown). Dropping it starts the
/// same shutdown in the background.
#[derive(Debug)]
pub struct RunningService {
    instance: String,
    stop_announcing: watch::Sender<bool>,
    stop_consuming: watch::Sender<bool>,
    announcer: Option<JoinHandle<()>>,
    consumer: Option<JoinHandle<Result<(), ServiceError>>>,
}

impl RunningService {
    pub(crate) fn start(
        instance: String,
        dispatcher: Arc<Dispatcher>,
        deliveries: Subscription,
        resumer: Resumer,
        announcer: Announcer,
        control: Subscription,
    ) -> Self {
        let (stop_announcing, announcing) = watch::channel(false);
        let (stop_consuming, consuming) = watch::channel(false);
        Self {
            instance,
            stop_announcing,
            stop_consuming,
            announcer: Some(tokio::spawn(announcer.run(Some(control), announcing))),
            consumer: Some(tokio::spawn(consume(
                dispatcher, deliveries, resumer, consuming,
            ))),
        }
    }

    /// This instance's id, as registered.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Stops gracefully: deregisters (so routers stop sending here), stops
    /// taking deliveries, lets in-flight handlers finish and settles each of
    /// their deliveries, and requeues deliveries that were prefetched but not started.
    pub async fn shutdown(mut self) -> Result<(), ServiceError> {
        let _ = self.stop_announcing.send(true);
        let announced = join(self.announcer.take()).await;
        let _ = self.stop_consuming.send(true);
        let consumed = join_consumer(&mut self.consumer).await;
        tracing::info!(instance = %self.instance, "Service stopped.");
        announced.and(consumed)
    }

    /// Waits until the instance stops consuming on its own, then deregisters.
    ///
    /// A deleted service queue is declared and consumed again (see
    /// [`ServiceBuilder`](crate::ServiceBuilder)); this returns only when
    /// that failed ([`ServiceError::ConsumerLost`]) or the transport was closed.
    /// Cancel-safe: dropping the future before it resolves leaves the
    /// instance running, so it can be raced against a shutdown signal and
    /// [`shutdown`](RunningService::shutdown) called afterwards.
    pub async fn wait(&mut self) -> Result<(), ServiceError> {
        let consumed = join_consumer(&mut self.consumer).await;
        let _ = self.stop_announcing.send(true);
        let announced = join(self.announcer.take()).await;
        consumed.and(announced)
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        let _ = self.stop_announcing.send(true);
        let _ = self.stop_consuming.send(true);
    }
}

/// Resolves once `stop` is set, or its sender is gone (which also means stop).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await.is_ok();
}

/// Joins the consumer task (cancel-safe: the handle is kept until it resolved).
async fn join_consumer(
    task: &mut Option<JoinHandle<Result<(), ServiceError>>>,
) -> Result<(), ServiceError> {
    let Some(handle) = task.as_mut() else {
        return Ok(());
    };
    let joined = handle.await;
    *task = None;
    joined.map_err(|e| ServiceError::TaskFailed(e.to_string()))?
}

async fn join(task: Option<JoinHandle<()>>) -> Result<(), ServiceError> {
    match task {
        None => Ok(()),
        Some(task) => task
            .await
            .map_err(|e| ServiceError::TaskFailed(e.to_string())),
    }
}

/// Spawns a task per delivery (the prefetch bounds how many) until `stop`,
/// consuming again when the consumer ends on its own (see [`Resumer`]).
/// Errors when it cannot consume again.
async fn consume(
    dispatcher: Arc<Dispatcher>,
    mut deliveries: Subscription,
    resumer: Resumer,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let mut in_flight = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            () = stopped(&mut stop) => break Ok(()),
            delivery = deliveries.next() => match delivery {
                Some(d) => {
                    in_flight.spawn(Arc::clone(&dispatcher).handle(d));
                }
                None => match resumer.resume(&mut stop).await {
                    Ok(Some(next)) => deliveries = next,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                },
            },
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "A delivery task failed.");
                }
            }
        }
    };
    let running = in_flight.len();
    if running > 0 {
        tracing::info!(service = %dispatcher.service, running, "Finishing in-flight requests.");
    }
    while let Some(done) = in_flight.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "A delivery task failed.");
        }
    }
    // Prefetched but never started: give them back for another instance.
    while let Some(Some(d)) = deliveries.next().now_or_never() {
        if let Err(e) = d.reject(true).await {
            tracing::debug!(error = %e, "Cannot requeue a prefetched delivery.");
        }
    }
    outcome
}
