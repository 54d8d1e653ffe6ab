//! The router: consumes the ingress queue, runs every message through the
//! chain, delivers it with a publisher confirm and only then acks the
//! ingress; forwards replies back to callers; keeps the registry.
//!
//! A router holds no state another instance lacks (the registry is rebuilt
//! from announcements, reply routing travels in signed headers), so more
//! instances on the same broker share the load as competing consumers.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_auth::{AssertionSigner, AssertionVerifier, Policy, Verifier};

use crate::{
    bus_topology,
    central::{CentralAuth, CentralSettings},
    chain::{AuthMode, AuthModes, Limits},
    config::{Config, ConfigError},
    dead_letter::DeadLetterBounds,
    error::TransportError,
    events::Entry,
    health::{Check, Health},
    jwks::RemoteKeys,
    meters::MessageMeters,
    names::BusNames,
    registry::{RegistryGrants, RegistryListener, RegistryTable},
    reply_context::ReplyContextKey,
    translate::Translator,
    transport::{SubscribeOptions, Transport},
    trust::{self, LiveTrust, TrustBackend, TrustService, TrustSettings, TrustStore},
};

mod consume;
mod direct;
mod held;
mod limit_return;
mod live;
mod pipeline;
mod poison;
mod readmit;
mod reject;
mod reload;
mod reply;
mod used_contexts;

pub use direct::{Answer, DirectEntry, DirectError};
pub use held::STOPPING_GRACE;
use held::{HeldCalls, Holding};
use live::{Fixed, Live, LiveConfig, LiveParts};
use pipeline::Pipeline;
pub use reload::RouterHandle;

/// Wait before handing a message (a request or a reply) back after an
/// infrastructure failure, so a broken dependency is not hammered.
const REQUEUE_BACKOFF: Duration = Duration::from_millis(200);

/// Settles a delivery by whether what it became reached the broker: acked
/// when `published` went through, else — the broker cannot take it now —
/// requeued after [`REQUEUE_BACKOFF`], with a warning that `failed` (what
/// could not be done). The result is the settling's.
async fn ack_or_requeue(
    acker: crate::transport::Acker,
    published: Result<(), TransportError>,
    msg_id: &str,
    failed: &str,
) -> Result<(), TransportError> {
    match published {
        Ok(()) => acker.ack().await,
        Err(e) => {
            tracing::warn!(msg.id = %msg_id, error = %e, "{failed}; requeued.");
            tokio::time::sleep(REQUEUE_BACKOFF).await;
            acker.reject(true).await
        }
    }
}
use reply::ReplyForwarder;

/// Everything a router needs, built from the config (`Config::router_settings`).
pub struct RouterSettings {
    /// Names of the bus.
    pub names: BusNames,
    /// This instance's id (unique per process).
    pub instance: String,
    /// Verifies callers' credentials (caller purpose).
    pub verifier: Arc<Verifier>,
    /// Verifies services' registration credentials (registration purpose).
    pub registration_verifier: Arc<Verifier>,
    /// The access policy.
    pub policy: Arc<Policy>,
    /// Signs the assertion services check.
    pub signer: AssertionSigner,
    /// Checks this bus's own assertions (re-admission).
    pub assertions: AssertionVerifier,
    /// Seals and opens reply contexts.
    pub reply_key: Arc<ReplyContextKey>,
    /// How long a service has to answer a request.
    pub reply_timeout: Duration,
    /// Oldest request re-admitted after it outlived its assertion.
    pub readmit_max_age: Duration,
    /// Codecs and schema mappings.
    pub translator: Arc<Translator>,
    /// Who may register which service.
    pub grants: RegistryGrants,
    /// Size limits.
    pub limits: Limits,
    /// Auth mode per route.
    pub modes: AuthModes,
    /// Remove the credential before delivery (gateway mode).
    pub strip_credential: bool,
    /// Write the caller's identity as informational headers too.
    pub identity_headers: bool,
    /// Unsettled ingress (and reply) deliveries at once.
    pub prefetch: u16,
    /// Calls held at once: their ingress delivery unacked until the reply
    /// passed, their copy in the service queue transient (README, "Delivery
    /// contract"); 0 delivers every request durably. Below `prefetch`.
    pub hold_calls: u16,
    /// Longest lease a registration may ask for.
    pub max_registration_ttl: Duration,
    /// How central-mode routes ask the central auth service.
    pub central: CentralSettings,
    /// Revocations and consumer changes at runtime (`[trust]`).
    pub trust: TrustSettings,
}

/// A router, ready to start on a transport.
pub struct Router {
    settings: RouterSettings,
    table: Arc<RegistryTable>,
    health: Arc<Health>,
}

/// A started router.
pub struct RunningRouter {
    /// The registry table this instance keeps.
    pub registry: Arc<RegistryTable>,
    /// Its client of the central auth service (when a route is in central mode).
    pub central: Option<Arc<CentralAuth>>,
    /// Its trust state (with `[trust] redis_url`); a config reload hands it
    /// the new consumers with [`LiveTrust::rebase`].
    pub trust: Option<Arc<LiveTrust>>,
    tasks: Vec<JoinHandle<()>>,
    consumers: Vec<JoinHandle<Result<(), TransportError>>>,
    /// What [`RunningRouter::open_entry`] needs.
    doors: Doors,
    /// Reloads the config.
    handle: RouterHandle,
}

/// The pipeline and transport an in-process entry shares with the ingress.
struct Doors {
    pipeline: Arc<Pipeline>,
    transport: Arc<dyn Transport>,
    names: BusNames,
    shutdown: CancellationToken,
}

impl Router {
    /// The router `config` describes: the one way `serve`, the demo and the
    /// tests build one. Errors list every config problem (before anything
    /// connects).
    pub fn from_config(config: &Config) -> Result<Self, Vec<ConfigError>> {
        Ok(Self::new(config.router_settings()?))
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.settings.instance
    }

    /// What this router says on `/health/live` and `/health/ready`: not
    /// ready until [`Router::start`] declared the topology and consumes.
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }

    /// The verifier of callers' credentials (for its cache's counters).
    pub fn verifier(&self) -> Arc<Verifier> {
        Arc::clone(&self.settings.verifier)
    }

    /// A router with `settings`.
    pub fn new(settings: RouterSettings) -> Self {
        Self {
            settings,
            table: Arc::new(RegistryTable::new()),
            health: Arc::new(Health::new()),
        }
    }

    /// Declares the bus topology on `transport`, starts the registry listener, then consumes
    /// the ingress and replies queues until `shutdown` is cancelled.
    ///
    /// Errors if the topology cannot be declared or a queue consumed.
    pub async fn start(
        self,
        transport: Arc<dyn Transport>,
        shutdown: CancellationToken,
    ) -> Result<RunningRouter, TransportError> {
        let Self {
            settings: s,
            table,
            health,
        } = self;
        health.watch_broker(&transport);
        transport.declare(&bus_topology::core(&s.names)).await?;
        health.set(Check::Topology, true);
        let remote = Arc::new(RemoteKeys::new(
            Arc::clone(s.verifier.store()),
            shutdown.clone(),
        ));
        let (trust, trust_task) = start_trust(
            &s.trust,
            Arc::clone(&remote),
            Arc::clone(&transport),
            shutdown.clone(),
        )
        .await?;
        let trust_live = trust.as_ref().map(|t| Arc::clone(&t.live));
        let central = s.modes.uses(AuthMode::Central).then(|| {
            Arc::new(CentralAuth::new(
                s.central.clone(),
                Arc::clone(&transport),
                s.names.clone(),
                s.signer.clone(),
            ))
        });
        let listener = RegistryListener {
            table: Arc::clone(&table),
            verifier: Arc::clone(&s.registration_verifier),
            grants: s.grants.clone(),
            max_ttl: s.max_registration_ttl,
            names: s.names.clone(),
            instance: s.instance.clone(),
            central: central.clone(),
            trust: trust.clone(),
        };
        let central_client = central.clone();
        let registry_task = listener
            .start(Arc::clone(&transport), shutdown.clone())
            .await?;
        let registry_task = watch_registry(registry_task, Arc::clone(&health), shutdown.clone());
        let bounds = DeadLetterBounds::from(s.limits);
        let held = (s.hold_calls > 0).then(|| Arc::new(HeldCalls::new(s.hold_calls.into())));
        let own_replies = bus_topology::router_replies(&s.names, &s.instance);
        if held.is_some() {
            transport.declare(&own_replies).await?;
        }
        let fixed = Fixed {
            verifier: Arc::clone(&s.verifier),
            table: Arc::clone(&table),
            signer: s.signer.clone(),
            reply_key: Arc::clone(&s.reply_key),
            reply_timeout: s.reply_timeout,
            names: s.names.clone(),
        };
        let current = Arc::new(LiveConfig::new(Live::build(
            &fixed,
            LiveParts {
                policy: s.policy,
                translator: s.translator,
                limits: s.limits,
                modes: s.modes,
                strip_credential: s.strip_credential,
                identity_headers: s.identity_headers,
            },
        )));
        remote.sync().await;
        let readmitter = Arc::new(readmit::Readmitter {
            transport: Arc::clone(&transport),
            names: s.names.clone(),
            bounds,
            assertions: s.assertions,
            signer: s.signer,
            verifier: Arc::clone(&s.verifier),
            current: Arc::clone(&current),
            max_age: s.readmit_max_age,
            used: used_contexts::UsedContexts::new(used_contexts::DEFAULT_CAPACITY),
        });
        let handle = RouterHandle {
            current: Arc::clone(&current),
            fixed,
            remote: Arc::clone(&remote),
            central: central.is_some(),
            trust: trust_live.clone(),
        };
        let meters = Arc::new(MessageMeters::register());
        let pipeline = Arc::new(Pipeline {
            meters: Arc::clone(&meters),
            current: Arc::clone(&current),
            remote,
            transport: Arc::clone(&transport),
            names: s.names.clone(),
            bounds,
            central,
            trust: Arc::new(TrustService::new(
                trust,
                Arc::clone(&transport),
                s.names.clone(),
            )),
            holding: held.as_ref().map(|calls| Holding {
                calls: Arc::clone(calls),
                reply_to: s.names.router_replies_queue(&s.instance),
                window: s.reply_timeout,
                shutdown: shutdown.clone(),
                meters: Arc::clone(&meters),
            }),
        });
        let forwarder = Arc::new(ReplyForwarder::new(
            current,
            Arc::clone(&s.reply_key),
            Arc::clone(&transport),
            s.names.clone(),
            bounds,
            held.clone(),
            meters,
        ));
        let cleaner = Arc::new(poison::PoisonCleaner::new(
            Arc::clone(&transport),
            s.names.clone(),
            bounds,
            readmitter,
            held.clone(),
        ));
        let options = SubscribeOptions::prefetch(s.prefetch);
        let ingress = consume::Consumer {
            transport: Arc::clone(&transport),
            names: s.names.clone(),
            queue: s.names.ingress_queue().to_owned(),
            options: options.clone(),
            health: Arc::clone(&health),
            check: Check::Ingress,
            own: None,
            finish_ready: false,
        };
        let replies = consume::Consumer {
            queue: s.names.replies_queue().to_owned(),
            check: Check::Replies,
            ..ingress.clone()
        };
        let poison = consume::Consumer {
            queue: s.names.poison_queue().to_owned(),
            options,
            check: Check::Poison,
            finish_ready: true,
            ..ingress.clone()
        };
        let held_replies = held.is_some().then(|| consume::Consumer {
            queue: s.names.router_replies_queue(&s.instance),
            check: Check::Replies,
            own: Some(own_replies),
            ..ingress.clone()
        });
        // All subscribe now, so `start` fails when a queue cannot be consumed.
        let (ingress_sub, replies_sub, poison_sub) = (
            ingress.subscribe().await?,
            replies.subscribe().await?,
            poison.subscribe().await?,
        );
        let held_replies = match held_replies {
            Some(consumer) => {
                let subscription = consumer.subscribe().await?;
                Some((consumer, subscription))
            }
            None => None,
        };
        let doors = Doors {
            pipeline: Arc::clone(&pipeline),
            transport: Arc::clone(&transport),
            names: s.names.clone(),
            shutdown: shutdown.clone(),
        };
        // Every held call is an ingress delivery in flight: once the ingress
        // has settled all of them, no reply is awaited any more.
        let ingress_stopped = CancellationToken::new();
        let ingress = {
            let stopped = ingress_stopped.clone();
            let consuming = ingress.keep_consuming(ingress_sub, shutdown.clone(), move |d| {
                Arc::clone(&pipeline).handle(d)
            });
            async move {
                let consumed = consuming.await;
                stopped.cancel();
                consumed
            }
        };
        let draining = tokio::spawn(mark_draining(Arc::clone(&health), shutdown.clone()));
        let held_replies = held_replies.map(|(consumer, subscription)| {
            let forwarder = Arc::clone(&forwarder);
            let stops = HeldRepliesStop {
                shutdown: shutdown.clone(),
                ingress_stopped: ingress_stopped.clone(),
            };
            consume_held_replies(consumer, subscription, stops, move |d| {
                Arc::clone(&forwarder).forward(d)
            })
        });
        let replies = replies.keep_consuming(replies_sub, shutdown.clone(), move |d| {
            Arc::clone(&forwarder).forward(d)
        });
        let poison = poison.keep_consuming(poison_sub, shutdown, move |d| {
            let cleaner = Arc::clone(&cleaner);
            async move { cleaner.clean(d).await }
        });
        tracing::info!(instance = %s.instance, namespace = %s.names.namespace(), "Router started.");
        Ok(RunningRouter {
            registry: table,
            central: central_client,
            trust: trust_live,
            tasks: [registry_task, draining]
                .into_iter()
                .chain(trust_task)
                .collect(),
            consumers: [
                tokio::spawn(ingress),
                tokio::spawn(replies),
                tokio::spawn(poison),
            ]
            .into_iter()
            .chain(held_replies.map(tokio::spawn))
            .collect(),
            doors,
            handle,
        })
    }
}

/// With a trust store configured: loads the whole trust state (retrying
/// until Redis answers: a router serves no message before it knows what is
/// revoked) and keeps it in sync. Errors when shut down before it loaded.
async fn start_trust(
    settings: &TrustSettings,
    remote: Arc<RemoteKeys>,
    transport: Arc<dyn Transport>,
    shutdown: CancellationToken,
) -> Result<(Option<Arc<TrustBackend>>, Option<JoinHandle<()>>), TransportError> {
    let Some(url) = &settings.redis_url else {
        return Ok((None, None));
    };
    let store = TrustStore::new(url, settings.key_prefix.clone())
        .map_err(|e| TransportError::InvalidTopology(e.to_string()))?;
    // Through the remote key sets, so a consumer keeps the keys fetched
    // from its JWKS whenever trust changes the consumers.
    let (store, live) = (
        Arc::new(store),
        Arc::new(LiveTrust::with_install(
            settings.baseline.clone(),
            Arc::clone(&settings.revocations),
            Box::new(move |all| remote.install_consumers(all)),
        )),
    );
    if !trust::first_load(&store, &live, &shutdown).await {
        return Err(TransportError::Closed);
    }
    let task = trust::keep_in_sync(
        Arc::clone(&store),
        Arc::clone(&live),
        transport,
        settings.resync,
        shutdown,
    );
    let backend = TrustBackend {
        live,
        store,
        key: settings.key.clone(),
        max_lifetime: settings.max_lifetime,
        leeway: settings.leeway,
    };
    Ok((Some(Arc::new(backend)), Some(task)))
}

/// When a router's private replies queue stops being consumed.
struct HeldRepliesStop {
    /// The router's shutdown.
    shutdown: CancellationToken,
    /// Cancelled once the ingress consumer has settled every delivery it
    /// took, held calls included.
    ingress_stopped: CancellationToken,
}

/// Consumes this router's private replies queue: on past the router's
/// shutdown, so the replies of the calls it still holds can release them,
/// until the ingress has settled every call (at once for a router holding
/// none) or for at most [`held::STOPPING_GRACE`] and a second (then the
/// calls still held have gone back to the queue). A consumer that cannot
/// consume again stops the router, as the others do.
async fn consume_held_replies<F, Fut>(
    consumer: consume::Consumer,
    subscription: crate::transport::Subscription,
    stops: HeldRepliesStop,
    handle: F,
) -> Result<(), TransportError>
where
    F: Fn(crate::transport::Delivery) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let HeldRepliesStop {
        shutdown,
        ingress_stopped,
    } = stops;
    let late = CancellationToken::new();
    let stop_late = {
        let (late, shutdown) = (late.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tokio::select! {
                () = ingress_stopped.cancelled() => {}
                () = tokio::time::sleep(held::STOPPING_GRACE + Duration::from_secs(1)) => {}
            }
            late.cancel();
        })
    };
    let consumed = consumer
        .keep_consuming(subscription, late.clone(), handle)
        .await;
    if consumed.is_err() {
        shutdown.cancel();
    }
    stop_late.abort();
    consumed
}

/// Keeps the registry check true while the listener runs; a listener that
/// ends before shutdown (its control queue closed) fails the router's health.
fn watch_registry(
    task: JoinHandle<()>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    health.set(Check::Registry, true);
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "The registry listener failed.");
        }
        health.set(Check::Registry, false);
        if !shutdown.is_cancelled() {
            health.set_failed();
        }
    })
}

/// Marks the router as draining (not ready) as soon as shutdown begins.
async fn mark_draining(health: Arc<Health>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    health.set_draining();
}

impl RunningRouter {
    /// The handle that reloads this router's config.
    pub fn handle(&self) -> RouterHandle {
        self.handle.clone()
    }

    /// Opens an in-process entry (`entry` labels its audit lines and
    /// metrics) to the same pipeline the ingress runs: declares the entry's
    /// exclusive reply queue and consumes it until the router's shutdown.
    ///
    /// Errors when the reply queue cannot be declared or consumed.
    pub async fn open_entry(&self, entry: Entry) -> Result<DirectEntry, TransportError> {
        let d = &self.doors;
        DirectEntry::open(
            entry,
            Arc::clone(&d.pipeline),
            Arc::clone(&d.transport),
            d.names.clone(),
            d.shutdown.clone(),
        )
        .await
    }

    /// Waits until every loop has stopped (after shutdown: in-flight messages
    /// are settled first).
    ///
    /// Errors when the router stopped because a queue it consumes vanished and
    /// could not be consumed again (a supervisor should restart it).
    pub async fn wait(self) -> Result<(), TransportError> {
        let mut outcome = Ok(());
        for consumer in self.consumers {
            match consumer.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => outcome = Err(e),
                Err(e) => tracing::error!(error = %e, "A router task failed."),
            }
        }
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "A router task failed.");
            }
        }
        outcome
    }
}
