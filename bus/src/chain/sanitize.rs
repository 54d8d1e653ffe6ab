//! The first step: strip what a client could forge, enforce size limits,
//! check the `reply_to`. Nothing here parses the payload.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::server_named::{self, ServerNamedQueues, Unbound};
use crate::{
    envelope::Envelope,
    headers,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
};

/// Size limits applied before anything is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest payload in bytes.
    pub max_message_bytes: usize,
    /// Largest encoded header table in bytes.
    pub max_header_bytes: usize,
    /// Most headers (top-level entries).
    pub max_header_count: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_header_count: 64,
        }
    }
}

/// Strips reserved and broker headers, enforces [`Limits`], checks `reply_to`.
pub struct Sanitize {
    limits: Limits,
    names: BusNames,
    server_named: ServerNamedQueues,
}

impl Sanitize {
    /// The step with `limits`, for the bus named by `names`; a server-named
    /// reply queue stays bound to its reply key for `reply_timeout` after the
    /// last request naming it.
    pub fn new(limits: Limits, names: BusNames, reply_timeout: Duration) -> Self {
        Self {
            limits,
            names,
            server_named: ServerNamedQueues::new(reply_timeout, server_named::DEFAULT_CAPACITY),
        }
    }

    /// Takes the `reply_to` out of the envelope and checks that it is the
    /// sender's own: direct reply-to, a caller queue the request's reply key
    /// opens (see [`ReplyKey`](crate::ReplyKey)), or a server-named queue
    /// (`amq.gen-…`) bound to the request's reply key (see
    /// [`ServerNamedQueues`]). Runs first, so a refusal for size still gets
    /// its error reply; a refused `reply_to` gets none (it may be anybody's
    /// queue).
    pub fn reply_to(&self, envelope: &mut Envelope) -> Result<Option<String>, Rejection> {
        let Some(reply_to) = envelope.reply_to.take() else {
            return Ok(None);
        };
        let key = envelope.headers.get_str(headers::REPLY_KEY);
        if server_named::is_server_named(&reply_to) {
            return match self.server_named.admit(&reply_to, key) {
                Ok(()) => Ok(Some(reply_to)),
                Err(why) => Err(bad_reply_to(match why {
                    Unbound::NoKey => format!(
                        "a server-named reply queue needs a `{}` (32 random bytes, \
                         base64url): the first request naming the queue binds it",
                        headers::REPLY_KEY
                    ),
                    Unbound::OtherKey => {
                        "the server-named reply queue is bound to another reply key".to_owned()
                    }
                    Unbound::Full => {
                        "too many server-named reply queues are in use; use a caller queue"
                            .to_owned()
                    }
                })),
            };
        }
        if !self.names.is_own_reply_to(&reply_to, key) {
            return Err(bad_reply_to(format!(
                "reply_to must be direct reply-to, the sender's caller queue \
                 (`{}<id>` with the `{}` that opens it) or a server-named queue \
                 (`{}…`) with its reply key",
                self.names.caller_queue_prefix(),
                headers::REPLY_KEY,
                server_named::SERVER_NAMED_PREFIX,
            )));
        }
        Ok(Some(reply_to))
    }

    /// Enforces the [`Limits`] and strips reserved and broker headers.
    pub fn limits(&self, envelope: &mut Envelope) -> Result<(), Rejection> {
        let too_large = |what: String| Rejection::new(RejectCode::TooLarge, Stage::Limits, what);
        if envelope.payload.len() > self.limits.max_message_bytes {
            return Err(too_large(format!(
                "payload of {} bytes exceeds the limit of {}",
                envelope.payload.len(),
                self.limits.max_message_bytes
            )));
        }
        if envelope.headers.len() > self.limits.max_header_count {
            return Err(too_large(format!(
                "{} headers exceed the limit of {}",
                envelope.headers.len(),
                self.limits.max_header_count
            )));
        }
        let header_bytes = envelope.headers.encoded_len();
        if header_bytes > self.limits.max_header_bytes {
            return Err(too_large(format!(
                "headers of {header_bytes} bytes exceed the limit of {}",
                self.limits.max_header_bytes
            )));
        }
        // Nested deeper than AMQP carries (a hostile table): it could never be
        // delivered, so refuse it now rather than fail at delivery time.
        if let Err(e) = envelope.headers.check_wire() {
            return Err(too_large(format!("headers cannot be carried: {e}")));
        }
        envelope
            .headers
            .retain(|name, _| !headers::is_reserved(name) && !headers::is_broker_header(name));
        Ok(())
    }
}

fn bad_reply_to(reason: String) -> Rejection {
    Rejection::new(RejectCode::BadReplyTo, Stage::Limits, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header_map::Headers;

    /// Both checks, in the gate's order; the envelope as it leaves, and the reply_to.
    fn run(mut envelope: Envelope) -> (Result<Envelope, Rejection>, Option<String>) {
        let step = Sanitize::new(
            Limits::default(),
            BusNames::new("tg"),
            Duration::from_secs(300),
        );
        let reply_to = match step.reply_to(&mut envelope) {
            Ok(r) => r,
            Err(e) => return (Err(e), None),
        };
        (step.limits(&mut envelope).map(|()| envelope), reply_to)
    }

    #[test]
    fn forged_bus_headers_are_stripped_in_any_letter_case() {
        let h = Headers::new()
            .with("x-tollgate-consumer", "admin")
            .with("X-Tollgate-Scopes", "all")
            .with("x-death", "old")
            .with("trace-id", "keep");
        let (out, _) = run(Envelope::new("{}").with_headers(h));
        let out = out.unwrap();
        assert_eq!(out.headers.len(), 1);
        assert_eq!(out.headers.get_str("trace-id"), Some("keep"));
    }

    #[test]
    fn a_reply_to_that_is_not_the_senders_own_is_refused() {
        let names = BusNames::new("tg");
        let (out, _) = run(Envelope::new("{}").with_reply_to("tg.svc.billing"));
        assert_eq!(out.unwrap_err().code, RejectCode::BadReplyTo);
        let key = crate::ReplyKey::generate();
        let (out, _) = run(Envelope::new("{}").with_reply_to(key.queue(&names)));
        assert_eq!(out.unwrap_err().code, RejectCode::BadReplyTo);
        let mut own = Envelope::new("{}");
        key.attach(&names, &mut own);
        let (out, reply_to) = run(own);
        let out = out.unwrap();
        assert_eq!(out.reply_to, None);
        assert_eq!(
            out.headers.get_str(headers::REPLY_KEY),
            None,
            "the key is stripped"
        );
        assert_eq!(reply_to, Some(key.queue(&names)));
    }

    #[test]
    fn a_server_named_reply_queue_is_bound_to_the_first_reply_key() {
        let step = Sanitize::new(
            Limits::default(),
            BusNames::new("tg"),
            Duration::from_secs(300),
        );
        let queue = "amq.gen-JzTY20BRgKO-HjmUJj0wLg";
        let request = |key: Option<&str>| {
            let mut e = Envelope::new("{}").with_reply_to(queue);
            if let Some(key) = key {
                e.headers.insert(headers::REPLY_KEY, key);
            }
            e
        };
        let (owner, attacker) = (crate::ReplyKey::generate(), crate::ReplyKey::generate());
        let refused = |e: &mut Envelope| step.reply_to(e).unwrap_err().code;
        assert_eq!(refused(&mut request(None)), RejectCode::BadReplyTo);
        assert_eq!(
            step.reply_to(&mut request(Some(owner.secret()))).unwrap(),
            Some(queue.to_owned())
        );
        assert_eq!(
            refused(&mut request(Some(attacker.secret()))),
            RejectCode::BadReplyTo
        );
        assert!(step.reply_to(&mut request(Some(owner.secret()))).is_ok());
    }

    #[test]
    fn oversized_messages_and_headers_are_refused() {
        let (out, _) = run(Envelope::new(vec![0u8; 2 * 1024 * 1024]));
        assert_eq!(out.unwrap_err().code, RejectCode::TooLarge);
        let many: Headers = (0..100).map(|i| (format!("h{i}"), 1i32.into())).collect();
        assert_eq!(
            run(Envelope::new("{}").with_headers(many))
                .0
                .unwrap_err()
                .code,
            RejectCode::TooLarge
        );
        let deep = (0..40).fold(crate::HeaderValue::Void, |v, _| {
            crate::HeaderValue::Array(vec![v])
        });
        let deep = Headers::new().with("deep", deep);
        assert_eq!(
            run(Envelope::new("{}").with_headers(deep))
                .0
                .unwrap_err()
                .code,
            RejectCode::TooLarge
        );
        let big = Headers::new().with("big", "x".repeat(20_000));
        assert_eq!(
            run(Envelope::new("{}").with_headers(big))
                .0
                .unwrap_err()
                .code,
            RejectCode::TooLarge
        );
    }
}
