//! One HTTP request: read it as the envelope an AMQP caller would publish,
//! send it through the router's gate, answer with the reply or the refusal.

use std::{sync::Arc, time::Duration};

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::{Request, body::Incoming, header};
use tollgate_bus::{
    Envelope, RejectCode, Rejection, Stage,
    router::{Answer, DirectEntry, DirectError},
};
use tracing::Instrument;

use super::{
    request::{Head, HeadError, read_head},
    response::{self, HttpResponse},
};

/// Answers the requests of every connection.
pub(crate) struct Handler {
    /// The in-process door to the router's pipeline.
    pub(crate) entry: Arc<DirectEntry>,
    /// `limits.max_message_bytes`: the largest body.
    pub(crate) max_body: usize,
    /// How long a service has to answer (then 504).
    pub(crate) reply_timeout: Duration,
    /// How long a client has to send its body (then 408).
    pub(crate) client_timeout: Duration,
}

impl Handler {
    /// Answers one request; never fails (every error is an HTTP answer).
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> HttpResponse {
        let (parts, body) = request.into_parts();
        let head = match read_head(&parts.method, parts.uri.path(), &parts.headers) {
            Ok(head) => head,
            Err(HeadError::Method(id)) => {
                let why = "only POST /{service}/{method}";
                return response::error("method_not_allowed", "entry", why, &id);
            }
            Err(HeadError::RequestId) => {
                let id = uuid::Uuid::new_v4().to_string();
                let why = "x-request-id must be 1–128 visible ASCII characters";
                return response::error("bad_request", "entry", why, &id);
            }
        };
        // As the AMQP entry's: every line about the request names it itself;
        // the span adding its id and route to the lines beneath is a debug one.
        let span = tracing::debug_span!("http", msg.id = %head.id, route = %head.route);
        self.answer(head, parts.headers, body)
            .instrument(span)
            .await
    }

    async fn answer(&self, head: Head, headers: hyper::HeaderMap, body: Incoming) -> HttpResponse {
        let Head {
            route,
            id,
            respond_async,
            mut envelope,
        } = head;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return self.too_large(&envelope, &route, &id).await;
        }
        let read = Limited::new(body, self.max_body).collect();
        envelope.payload = match tokio::time::timeout(self.client_timeout, read).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return self.too_large(&envelope, &route, &id).await;
            }
            Ok(Err(e)) => {
                tracing::debug!(msg.id = %id, error = %e, "The request body could not be read.");
                let why = format!("the request body could not be read: {e}");
                return closing(response::error("bad_request", "entry", why, &id));
            }
            Err(_) => {
                tracing::info!(
                    msg.id = %id,
                    secs = self.client_timeout.as_secs(),
                    "A client was too slow sending its body."
                );
                let why = format!(
                    "the request body did not arrive within {} s",
                    self.client_timeout.as_secs()
                );
                return closing(response::error("request_timeout", "entry", why, &id));
            }
        };
        let wait = (!respond_async).then_some(self.reply_timeout);
        match self.entry.send(envelope, &route, wait).await {
            Ok(Answer::Reply(reply)) => response::reply(reply, &id),
            Ok(Answer::Accepted) => response::accepted(&id),
            Ok(Answer::Refused(rejection)) => response::refused(&rejection, &id),
            Err(e) => {
                tracing::warn!(msg.id = %id, route = %route, error = %e, code = e.code(), "An HTTP request got no answer.");
                let stage = match e {
                    DirectError::Timeout(_) => "service",
                    _ => "deliver",
                };
                response::error(e.code(), stage, e.to_string(), &id)
            }
        }
    }

    /// Refuses a body past the limit without reading it whole: the same
    /// audit line and dead-letter copy (without payload) as the gate's
    /// `too_large`, then 413 and the connection closed (the rest of the
    /// body is not read).
    async fn too_large(&self, envelope: &Envelope, route: &str, id: &str) -> HttpResponse {
        let rejection = Rejection::new(
            RejectCode::TooLarge,
            Stage::Limits,
            format!("payload exceeds the limit of {} bytes", self.max_body),
        );
        if let Err(e) = self.entry.refuse(envelope, route, &rejection).await {
            tracing::warn!(msg.id = %id, error = %e, "The refusal could not be recorded.");
            return response::error(e.code(), "deliver", e.to_string(), id);
        }
        closing(response::refused(&rejection, id))
    }
}

/// Asks hyper to close the connection after this answer: the client's
/// stream is not in a state to carry another request.
fn closing(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}
