//! Typed handlers, erased behind one trait so a service holds one per method.

use std::{collections::HashMap, future::Future, marker::PhantomData, sync::Arc};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use tollgate_auth::Identity;
use tollgate_bus::{
    Headers,
    translate::{Codec, TranslateError},
};

use crate::{error::HandlerError, error::ServiceError, request::Request};

/// Code of the error reply when a handler panics or its reply cannot be encoded.
pub const HANDLER_FAILED: &str = "handler_failed";
/// Code of the error reply when the request body is not a valid document of
/// its content type.
pub const BAD_PAYLOAD: &str = "bad_payload";
/// Code of the error reply when the request body is a valid document that
/// does not fit the handler's input type (a missing field, a wrong type), and
/// of [`HandlerError::invalid`].
pub const INVALID_REQUEST: &str = "invalid_request";

/// Longest decoder message an error reply quotes, in bytes (a message may
/// quote a string of the payload).
const MAX_DETAIL_BYTES: usize = 256;
/// Code of the error reply when the service has no handler for the method.
pub const UNKNOWN_METHOD: &str = "unknown_method";

/// An admitted request before its body is decoded.
pub(crate) struct Incoming {
    pub(crate) identity: Identity,
    pub(crate) route: String,
    pub(crate) method: String,
    pub(crate) message_id: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) headers: Headers,
    pub(crate) payload: Bytes,
    /// Codec of the request body.
    pub(crate) codec: Codec,
}

/// A handler with its types erased: bytes in, bytes (in `reply` codec) out.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, incoming: Incoming, reply: Codec) -> BoxFuture<'static, Handled>;
}

/// What a handler produced: an encoded reply body or an error reply.
pub(crate) type Handled = Result<Vec<u8>, HandlerError>;

/// The handlers of a service, by method.
#[derive(Default, Clone)]
pub(crate) struct Handlers(HashMap<String, Arc<dyn ErasedHandler>>);

struct Typed<F, T, R> {
    f: F,
    _types: PhantomData<fn(T) -> R>,
}

// === Handlers ===

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut methods: Vec<&str> = self.0.keys().map(String::as_str).collect();
        methods.sort_unstable();
        f.debug_tuple("Handlers").field(&methods).finish()
    }
}

impl Handlers {
    /// Adds `f` for `method`; errors on an invalid or repeated method.
    pub(crate) fn insert<F, Fut, T, R>(&mut self, method: &str, f: F) -> Result<(), ServiceError>
    where
        F: Fn(Request<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
    {
        if !is_valid_method(method) {
            return Err(ServiceError::InvalidMethod(method.to_owned()));
        }
        if self.0.contains_key(method) {
            return Err(ServiceError::DuplicateMethod(method.to_owned()));
        }
        let typed = Typed {
            f,
            _types: PhantomData,
        };
        self.0.insert(method.to_owned(), Arc::new(typed));
        Ok(())
    }

    /// The handler of `method`.
    pub(crate) fn get(&self, method: &str) -> Option<Arc<dyn ErasedHandler>> {
        self.0.get(method).cloned()
    }

    /// Whether there is no handler.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A method is one or more dotted words without wildcards or whitespace.
fn is_valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= 128
        && method.split('.').all(|w| !w.is_empty())
        && !method
            .chars()
            .any(|c| c == '*' || c == '#' || c.is_whitespace() || c.is_control())
}

// === Typed ===

impl<F, Fut, T, R> ErasedHandler for Typed<F, T, R>
where
    F: Fn(Request<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    fn call(&self, incoming: Incoming, reply: Codec) -> BoxFuture<'static, Handled> {
        let body: T = match incoming.codec.from_slice(&incoming.payload) {
            Ok(body) => body,
            Err(e) => {
                let error = decode_error(incoming.codec, &incoming.payload, &e);
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        let request = Request {
            identity: incoming.identity,
            body,
            route: incoming.route,
            method: incoming.method,
            message_id: incoming.message_id,
            correlation_id: incoming.correlation_id,
            headers: incoming.headers,
        };
        let future = (self.f)(request);
        Box::pin(async move {
            let out = future.await?;
            reply.to_vec(&out).map_err(|e| {
                tracing::warn!(error = %e, "A handler's reply cannot be encoded.");
                HandlerError::new(HANDLER_FAILED, "the reply could not be encoded")
            })
        })
    }
}

/// Why a body did not decode into the handler's input: `bad_payload` when it
/// is no valid document of `codec` (or nests too deep, or has trailing
/// bytes), `invalid_request` with the decoder's words (a missing field, a
/// wrong type; at most [`MAX_DETAIL_BYTES`]) when it is one of the wrong shape.
fn decode_error(codec: Codec, payload: &[u8], error: &TranslateError) -> HandlerError {
    let TranslateError::Decode { source, .. } = error else {
        return HandlerError::new(BAD_PAYLOAD, format!("cannot decode the body: {error}"));
    };
    // Only the error path decodes twice: is it a document at all?
    if codec.decode(payload).is_err() {
        return HandlerError::new(BAD_PAYLOAD, format!("cannot decode the body: {error}"));
    }
    let detail = source.to_string();
    let mut end = detail.len().min(MAX_DETAIL_BYTES);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < detail.len() { "…" } else { "" };
    HandlerError::new(
        INVALID_REQUEST,
        format!(
            "payload does not match the handler's input: {}{cut}",
            &detail[..end]
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct In {
        n: u32,
    }

    #[derive(Serialize)]
    struct Out {
        doubled: u32,
    }

    fn incoming(payload: &'static [u8]) -> Incoming {
        Incoming {
            identity: Identity::new("alice"),
            route: "calc.double".into(),
            method: "double".into(),
            message_id: "m1".into(),
            correlation_id: None,
            headers: Headers::new(),
            payload: Bytes::from_static(payload),
            codec: Codec::Json,
        }
    }

    fn handlers() -> Handlers {
        let mut h = Handlers::default();
        h.insert("double", |req: Request<In>| async move {
            Ok::<_, HandlerError>(Out {
                doubled: req.body.n * 2,
            })
        })
        .unwrap();
        h
    }

    #[tokio::test]
    async fn decodes_calls_and_encodes() {
        let out = handlers()
            .get("double")
            .unwrap()
            .call(incoming(br#"{"n":21}"#), Codec::Json);
        assert_eq!(out.await.unwrap(), br#"{"doubled":42}"#);
    }

    #[tokio::test]
    async fn an_undecodable_body_is_bad_payload() {
        let out = handlers()
            .get("double")
            .unwrap()
            .call(incoming(b"{"), Codec::Json);
        assert_eq!(out.await.unwrap_err().code(), BAD_PAYLOAD);
    }

    #[tokio::test]
    async fn a_valid_document_of_the_wrong_shape_says_what_does_not_fit() {
        let call = |payload| {
            handlers()
                .get("double")
                .unwrap()
                .call(incoming(payload), Codec::Json)
        };
        let missing = call(b"{}").await.unwrap_err();
        assert_eq!(missing.code(), INVALID_REQUEST);
        assert_eq!(
            missing.message(),
            "payload does not match the handler's input: missing field `n` at line 1 column 2"
        );
        let wrong_type = call(br#"{"n":"x"}"#).await.unwrap_err();
        assert_eq!(wrong_type.code(), INVALID_REQUEST);
        assert!(
            wrong_type.message().contains("invalid type"),
            "{}",
            wrong_type.message()
        );
        assert_eq!(call(b"{} {}").await.unwrap_err().code(), BAD_PAYLOAD);
    }

    #[tokio::test]
    async fn a_long_decoder_message_is_cut() {
        let long = format!(r#"{{"n":"{}"}}"#, "é".repeat(1000));
        let incoming = Incoming {
            payload: Bytes::from(long),
            ..incoming(b"")
        };
        let error = handlers()
            .get("double")
            .unwrap()
            .call(incoming, Codec::Json)
            .await
            .unwrap_err();
        assert_eq!(error.code(), INVALID_REQUEST);
        assert!(error.message().len() < 400, "{}", error.message().len());
        assert!(error.message().ends_with('…'));
    }

    #[tokio::test]
    async fn a_shape_error_in_messagepack_is_told_too() {
        let payload = Codec::MessagePack
            .to_vec(&serde_json::json!({"m": 1}))
            .unwrap();
        let incoming = Incoming {
            payload: Bytes::from(payload),
            codec: Codec::MessagePack,
            ..incoming(b"")
        };
        let error = handlers()
            .get("double")
            .unwrap()
            .call(incoming, Codec::Json)
            .await
            .unwrap_err();
        assert_eq!(error.code(), INVALID_REQUEST, "{}", error.message());
        assert!(error.message().contains("`n`"), "{}", error.message());
    }

    #[test]
    fn refuses_repeated_and_invalid_methods() {
        let mut h = handlers();
        let again = h.insert("double", |_: Request<In>| async {
            Ok::<_, HandlerError>(())
        });
        assert!(matches!(again, Err(ServiceError::DuplicateMethod(_))));
        for bad in ["", "a#", "*", "a..b", "a b"] {
            let r = h.insert(bad, |_: Request<In>| async { Ok::<_, HandlerError>(()) });
            assert!(matches!(r, Err(ServiceError::InvalidMethod(_))), "{bad}");
        }
    }
}
