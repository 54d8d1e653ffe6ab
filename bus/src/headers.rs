//! Every header name Tollgate reads or writes, defined once.
//!
//! Names under [`TOLLGATE_PREFIX`] are trusted only when the router wrote
//! them: the router strips every inbound `x-tollgate-*` header before anything
//! else, so a client cannot forge them.

/// Prefix of every header the bus itself sets.
pub const TOLLGATE_PREFIX: &str = "x-tollgate-";

/// The caller's credential: `Bearer <jwt>` (or an opaque session token).
pub const AUTHORIZATION: &str = "authorization";

/// Machine code of a rejection (`forbidden`, `token_expired`, …).
pub const CODE: &str = "x-tollgate-code";
/// Pipeline stage that refused the message (`authenticate`, `authorize`, …).
pub const STAGE: &str = "x-tollgate-stage";
/// Human-readable reason of a rejection.
pub const REASON: &str = "x-tollgate-reason";
/// On a dead-letter copy: why some or all of the sender's headers were left out.
pub const HEADERS_DROPPED: &str = "x-tollgate-headers-dropped";
/// On a dead-letter copy: the refused payload was larger than a copy carries
/// (its size and the bound); the copy has an empty payload.
pub const PAYLOAD_DROPPED: &str = "x-tollgate-payload-dropped";
/// Marks an error reply; its value is the rejection code.
pub const ERROR: &str = "x-tollgate-error";

/// The verified consumer, set by the router after authentication.
pub const CONSUMER: &str = "x-tollgate-consumer";
/// The verified subject (`sub` claim).
pub const SUBJECT: &str = "x-tollgate-subject";
/// The verified groups, as an array of strings.
pub const GROUPS: &str = "x-tollgate-groups";
/// The verified scopes, as an array of strings.
pub const SCOPES: &str = "x-tollgate-scopes";
/// The short-lived assertion the bus signs for the service.
pub const ASSERTION: &str = "x-tollgate-assertion";
/// The route (`service.method`) the message was admitted to.
pub const ROUTE: &str = "x-tollgate-route";
/// Opaque, bus-signed context of a request (the caller's `reply_to`, format and
/// schema version). A service copies it verbatim onto its reply; the router
/// checks it and uses it to translate and forward the reply, holding no state.
pub const REPLY_CONTEXT: &str = "x-tollgate-reply-context";
/// On a request: the caller's proof that its `reply_to` is its own queue (the
/// secret whose SHA-256 names the queue, see `ReplyKey`). The router checks
/// it and strips it like every `x-tollgate-*` header.
pub const REPLY_KEY: &str = "x-tollgate-reply-key";
/// The schema version of the payload as delivered to a service (set by the router).
pub const SCHEMA_VERSION: &str = "x-tollgate-schema-version";
/// How the router authenticated the message: `gateway` or `service`.
/// Informational only: a service never trusts it (see the SDK).
pub const AUTH_MODE: &str = "x-tollgate-auth-mode";

/// On a re-admitted request: when it first entered the bus (seconds since
/// the epoch, its first assertion's `iat`), from which its age counts at a
/// next re-admission (`router::readmit`).
pub const ADMITTED_AT: &str = "x-tollgate-admitted-at";

/// How often the routers returned a request to the ingress after the
/// ingress queue dead-lettered it at its delivery limit
/// (`router::limit_return`).
pub const LIMIT_RETURNS: &str = "x-tollgate-limit-returns";

/// The schema version a caller speaks (a public header: callers set it).
pub const CALLER_SCHEMA_VERSION: &str = "schema-version";

/// Set by RabbitMQ (and the memory transport) on dead-lettered messages.
pub const X_DEATH: &str = "x-death";
/// Why a message was first dead-lettered: `rejected`, `expired`, `maxlen`, `delivery_limit`.
pub const X_FIRST_DEATH_REASON: &str = "x-first-death-reason";
/// The queue a message was first dead-lettered from.
pub const X_FIRST_DEATH_QUEUE: &str = "x-first-death-queue";
/// The exchange a dead-lettered message was first published to.
pub const X_FIRST_DEATH_EXCHANGE: &str = "x-first-death-exchange";
/// How often a quorum queue has returned the message (set on redeliveries).
pub const X_DELIVERY_COUNT: &str = "x-delivery-count";

/// The broker's latest dead-lettering recorded in `headers`: the first
/// entry of `x-death` (RabbitMQ, and the memory broker, put each new death
/// first), with its `reason`, `queue`, `exchange` and `routing-keys`.
pub fn latest_death(headers: &crate::header_map::Headers) -> Option<&crate::header_map::Headers> {
    headers.get(X_DEATH)?.as_array()?.first()?.as_table()
}

/// Whether `name` is reserved for the bus (and so must be stripped from client input).
pub fn is_reserved(name: &str) -> bool {
    name.len() >= TOLLGATE_PREFIX.len()
        && name.as_bytes()[..TOLLGATE_PREFIX.len()].eq_ignore_ascii_case(TOLLGATE_PREFIX.as_bytes())
}

/// Whether the broker sets `name` on redelivered or dead-lettered messages
/// (`x-death`, `x-first-death-*`, `x-last-death-*`, `x-delivery-count`, in any
/// letter case): it describes a queue's history, never the sender's request.
pub fn is_broker_header(name: &str) -> bool {
    let starts = |prefix: &str| {
        name.len() >= prefix.len()
            && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    name.eq_ignore_ascii_case(X_DEATH)
        || name.eq_ignore_ascii_case(X_DELIVERY_COUNT)
        || starts("x-first-death-")
        || starts("x-last-death-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_headers_are_matched_case_insensitively() {
        for name in [
            "x-death",
            "X-Death",
            "x-first-death-reason",
            "X-LAST-DEATH-QUEUE",
            "x-delivery-count",
        ] {
            assert!(is_broker_header(name), "{name}");
        }
        for name in ["x-deaths", "x-first-death", "death", "trace-id"] {
            assert!(!is_broker_header(name), "{name}");
        }
    }

    #[test]
    fn reserved_names_are_matched_case_insensitively() {
        assert!(is_reserved("x-tollgate-consumer"));
        assert!(is_reserved("X-Tollgate-Consumer"));
        assert!(!is_reserved("x-tollgat"));
        assert!(!is_reserved("authorization"));
    }
}
