//! Telemetry events: each `emit()` both logs and counts, so logs and metrics
//! never disagree. Metric names are defined here, once.

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

use crate::{
    meters::MessageMeters,
    rejection::{RejectCode, Stage},
};

/// Counter of messages by `outcome` (`delivered`, `rejected`, `requeued`) and `code`.
pub const MESSAGES_TOTAL: &str = "tollgate_messages_total";
/// Histogram of seconds spent per pipeline `stage`.
pub const STAGE_SECONDS: &str = "tollgate_stage_seconds";
/// Counter of verified-token cache `result` (`hit`, `miss`).
pub const VERIFY_CACHE_TOTAL: &str = "tollgate_verify_cache_total";
/// Gauge of live services in the registry.
pub const REGISTRY_SERVICES: &str = "tollgate_registry_services";
/// Counter of registry announcements by `outcome` (`accepted`, `refused`).
pub const ANNOUNCEMENTS_TOTAL: &str = "tollgate_announcements_total";
/// Counter of replies forwarded to callers by `outcome`.
pub const REPLIES_TOTAL: &str = "tollgate_replies_total";
/// Counter of held calls by how their hold `ended` (`replied`, `lapsed`,
/// `stopping`); see README, "Delivery contract".
pub const HELD_CALLS_TOTAL: &str = "tollgate_held_calls_total";
/// Gauge of the calls a router holds now.
pub const HELD_CALLS: &str = "tollgate_held_calls";
/// Counter: messages the broker dead-lettered on its own, recorded clean in `<ns>.dead`.
pub const BROKER_DEAD_LETTERS_TOTAL: &str = "tollgate_broker_dead_letters_total";
/// Counter of remote JWKS fetches by `reason` (`schedule`, `unknown_kid`)
/// and `outcome` (`ok`, or the error's code).
pub const JWKS_FETCHES_TOTAL: &str = "tollgate_jwks_fetches_total";
/// Counter of config reloads by `outcome` (`applied`, `refused`).
pub const RELOADS_TOTAL: &str = "tollgate_reloads_total";
/// Counter: requests handed back for re-admission, by outcome.
pub const READMISSIONS_TOTAL: &str = "tollgate_readmissions_total";
/// Counter: requests the ingress queue dead-lettered at its delivery limit,
/// published to the ingress again.
pub const LIMIT_RETURNS_TOTAL: &str = "tollgate_limit_returns_total";
/// Counter of trust changes by `outcome` (`taken`, `refused`: requests to
/// this router; `applied`, `ignored`: broadcasts from routers) and `code`.
pub const TRUST_CHANGES_TOTAL: &str = "tollgate_trust_changes_total";

/// Gauge, per `service` (set by the service SDK, not the router): the
/// service's clock minus the `iat` of the last bus assertion with a valid
/// signature, in seconds. Negative: the service's clock is behind the
/// router's; positive: ahead, or the message waited in the queue.
pub const CLOCK_SKEW_SECONDS: &str = "tollgate_clock_skew_seconds";

/// The log target of the one line per delivered message (off unless turned
/// on, e.g. `RUST_LOG=tollgate::access=info`).
pub const ACCESS_TARGET: &str = "tollgate::access";
/// The log target of security events: refused messages, replies and
/// announcements (warn: visible at the default level).
pub const AUDIT_TARGET: &str = "tollgate::audit";

/// Bucket bounds (seconds) of [`STAGE_SECONDS`]: the gate's steps take
/// microseconds, a confirmed delivery about a millisecond, a slow broker up
/// to seconds.
pub const STAGE_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The Prometheus exporter's settings for these metrics: [`STAGE_SECONDS`]
/// as a histogram (buckets add up across router instances; quantiles would
/// not).
///
/// Errors only if the bucket list is empty.
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(STAGE_SECONDS.to_owned()), &STAGE_BUCKETS)
}

/// The door a message came in by: labels the access and audit lines and
/// [`MESSAGES_TOTAL`], so both entries are counted the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entry {
    /// Published to the ingress exchange (`<ns>.ingress`).
    Amqp,
    /// `POST /{service}/{method}` on the router's HTTP listener.
    Http,
}

impl Entry {
    /// Every entry, each at the index of its discriminant.
    pub const ALL: [Self; 2] = [Self::Amqp, Self::Http];

    /// The stable label: `amqp` or `http`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Amqp => "amqp",
            Self::Http => "http",
        }
    }
}

/// A message was delivered to its service.
pub struct MessageDelivered<'a> {
    /// The door it came in by.
    pub entry: Entry,
    /// `service.method`.
    pub route: &'a str,
    /// Verified consumer, if any.
    pub consumer: Option<&'a str>,
    /// Message id.
    pub message_id: &'a str,
}

/// A message was refused (the message's fault).
pub struct MessageRejected<'a> {
    /// The door it came in by.
    pub entry: Entry,
    /// Stable code.
    pub code: RejectCode,
    /// Stage that refused.
    pub stage: Stage,
    /// Route, when known.
    pub route: &'a str,
    /// Verified consumer, when known.
    pub consumer: Option<&'a str>,
    /// Message id.
    pub message_id: &'a str,
    /// Correlation id, when the message had one.
    pub correlation_id: Option<&'a str>,
    /// Reason, free of secrets.
    pub reason: &'a str,
}

/// A message went back to the queue (the infrastructure's fault).
pub struct MessageRequeued<'a> {
    /// Message id.
    pub message_id: &'a str,
    /// Transport error code.
    pub error: &'a str,
}

impl MessageDelivered<'_> {
    /// Logs the access line (target [`ACCESS_TARGET`]) and counts it in `meters`.
    pub fn emit(&self, meters: &MessageMeters) {
        tracing::info!(
            target: ACCESS_TARGET, outcome = "delivered", entry = self.entry.as_str(),
            msg.id = %self.message_id,
            route = %self.route, consumer = self.consumer.unwrap_or("-"),
            "Message admitted and delivered."
        );
        meters.delivered(self.entry);
    }
}

impl MessageRejected<'_> {
    /// Logs the audit line (target [`AUDIT_TARGET`], warn) and counts.
    pub fn emit(&self) {
        tracing::warn!(
            target: AUDIT_TARGET, outcome = "rejected", entry = self.entry.as_str(),
            msg.id = %self.message_id, corr.id = self.correlation_id.unwrap_or("-"),
            route = %self.route, consumer = self.consumer.unwrap_or("-"),
            code = self.code.as_str(), stage = self.stage.as_str(), reason = %self.reason,
            "Message refused."
        );
        metrics::counter!(
            MESSAGES_TOTAL, "outcome" => "rejected", "code" => self.code.as_str(),
            "stage" => self.stage.as_str(), "entry" => self.entry.as_str()
        )
        .increment(1);
    }
}

impl MessageRequeued<'_> {
    /// Logs and counts.
    pub fn emit(&self) {
        tracing::warn!(msg.id = %self.message_id, error = self.error, outcome = "requeued", "Delivery failed; message requeued.");
        metrics::counter!(MESSAGES_TOTAL, "outcome" => "requeued", "code" => self.error.to_owned())
            .increment(1);
    }
}

/// Records an announcement outcome and the registry size.
pub fn announcement(outcome: &'static str, services: usize) {
    metrics::counter!(ANNOUNCEMENTS_TOTAL, "outcome" => outcome).increment(1);
    metrics::gauge!(REGISTRY_SERVICES).set(services as f64);
}

/// Records a trust change request or broadcast: `outcome` and its `code`
/// (the change's kind, or why it was refused or ignored).
pub fn trust_change(outcome: &'static str, code: &'static str) {
    metrics::counter!(TRUST_CHANGES_TOTAL, "outcome" => outcome, "code" => code).increment(1);
}

/// Records a message the broker dead-lettered, now recorded clean.
pub fn broker_dead_letter() {
    metrics::counter!(BROKER_DEAD_LETTERS_TOTAL).increment(1);
}

/// Records a request returned to the ingress after its delivery limit.
pub fn limit_return() {
    metrics::counter!(LIMIT_RETURNS_TOTAL).increment(1);
}

/// Records what became of a request handed back for re-admission
/// (`readmitted`, or the refusal's code).
pub fn readmission(outcome: &'static str) {
    metrics::counter!(READMISSIONS_TOTAL, "outcome" => outcome).increment(1);
}

/// Records a remote JWKS fetch.
pub fn jwks_fetch(reason: &'static str, outcome: &'static str) {
    metrics::counter!(JWKS_FETCHES_TOTAL, "reason" => reason, "outcome" => outcome).increment(1);
}

/// Records a config reload (`applied` or `refused`).
pub fn reload(outcome: &'static str) {
    metrics::counter!(RELOADS_TOTAL, "outcome" => outcome).increment(1);
}

/// Records the end of a held call other than by its reply (counted in
/// [`MessageMeters`]).
pub fn held_call(ended: &'static str) {
    metrics::counter!(HELD_CALLS_TOTAL, "ended" => ended).increment(1);
}

/// Records a forwarded (or dropped) reply.
pub fn reply(outcome: &'static str) {
    metrics::counter!(REPLIES_TOTAL, "outcome" => outcome).increment(1);
}
