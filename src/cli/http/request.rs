//! Reading an HTTP request into the envelope an AMQP caller would publish.

use hyper::{HeaderMap, Method, header};
use tollgate_bus::{Envelope, headers};

/// The request header whose value becomes the message id, and comes back.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// Longest accepted `x-request-id`.
const MAX_REQUEST_ID: usize = 128;

/// What the head of a request says, before its body is read.
#[derive(Debug)]
pub(crate) struct Head {
    /// `service.method`, from `POST /{service}/{method}` (the path as a
    /// routing key otherwise, which the gate refuses as `no_route`).
    pub(crate) route: String,
    /// The message id: the client's `x-request-id`, or a fresh one.
    pub(crate) id: String,
    /// `Prefer: respond-async`: answer 202 once delivered.
    pub(crate) respond_async: bool,
    /// The envelope without its payload.
    pub(crate) envelope: Envelope,
}

/// Why a request's head is refused before the gate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not `POST`; the message id the answer carries.
    Method(String),
    /// A malformed `x-request-id`.
    RequestId,
}

/// Reads the head. Carries over only what the AMQP contract knows: the
/// credential (every `Authorization` value, so two are refused as
/// ambiguous by the gate), the content type and the caller's schema version.
pub(crate) fn read_head(method: &Method, path: &str, map: &HeaderMap) -> Result<Head, HeadError> {
    let id = match map.get(REQUEST_ID) {
        Some(value) => valid_request_id(value.as_bytes()).ok_or(HeadError::RequestId)?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    if method != Method::POST {
        return Err(HeadError::Method(id));
    }
    let mut envelope = Envelope::new(bytes::Bytes::new()).with_id(id.clone());
    envelope.content_type = text(map, header::CONTENT_TYPE.as_str());
    if let Some(version) = text(map, headers::CALLER_SCHEMA_VERSION) {
        envelope
            .headers
            .insert(headers::CALLER_SCHEMA_VERSION, version);
    }
    // The gate reads the credential in any letter case and refuses more than one.
    let names = [headers::AUTHORIZATION, "Authorization", "AUTHORIZATION"];
    for (value, name) in map.get_all(header::AUTHORIZATION).iter().zip(names) {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        envelope.headers.insert(name, value);
    }
    Ok(Head {
        route: route_of(path),
        id,
        respond_async: prefers_async(map),
        envelope,
    })
}

/// `/orders/create` → `orders.create`; any other path is kept (without its
/// leading `/`) for the gate to refuse.
fn route_of(path: &str) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    match path.split_once('/') {
        Some((service, method)) if !method.contains('/') => format!("{service}.{method}"),
        _ => path.to_owned(),
    }
}

fn text(map: &HeaderMap, name: &str) -> Option<String> {
    map.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// 1–128 visible ASCII characters.
fn valid_request_id(value: &[u8]) -> Option<String> {
    let ok = (1..=MAX_REQUEST_ID).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic);
    ok.then(|| String::from_utf8_lossy(value).into_owned())
}

/// `Prefer: respond-async` (RFC 7240), among other preferences.
fn prefers_async(map: &HeaderMap) -> bool {
    map.get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            p.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("respond-async")
        })
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_post_becomes_the_envelope_an_amqp_caller_would_publish() {
        let head = read_head(
            &Method::POST,
            "/orders/create",
            &map(&[
                ("authorization", "Bearer t"),
                ("content-type", "application/msgpack"),
                ("x-request-id", "req-1"),
                ("x-other", "not carried"),
            ]),
        )
        .unwrap();
        assert_eq!(head.route, "orders.create");
        assert_eq!(head.envelope.id, "req-1");
        assert_eq!(
            head.envelope.content_type.as_deref(),
            Some("application/msgpack")
        );
        assert_eq!(
            head.envelope.headers.get_str("authorization"),
            Some("Bearer t")
        );
        assert_eq!(head.envelope.headers.len(), 1);
        assert!(!head.respond_async);
    }

    #[test]
    fn two_credentials_are_both_carried_for_the_gate_to_refuse() {
        let head = read_head(
            &Method::POST,
            "/a/b",
            &map(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
        )
        .unwrap();
        assert_eq!(head.envelope.headers.len(), 2);
    }

    #[test]
    fn prefer_respond_async_is_found_among_other_preferences() {
        let head = read_head(
            &Method::POST,
            "/a/b",
            &map(&[("prefer", "wait=5, respond-async")]),
        )
        .unwrap();
        assert!(head.respond_async);
    }

    #[test]
    fn other_paths_are_left_for_the_gate_to_refuse() {
        assert_eq!(route_of("/a/b/c"), "a/b/c");
        assert_eq!(route_of("/a"), "a");
    }

    #[test]
    fn a_bad_request_id_or_method_is_refused() {
        let bad = map(&[("x-request-id", "has space")]);
        assert_eq!(
            read_head(&Method::POST, "/a/b", &bad).unwrap_err(),
            HeadError::RequestId
        );
        assert!(matches!(
            read_head(&Method::GET, "/a/b", &HeaderMap::new()).unwrap_err(),
            HeadError::Method(_)
        ));
        let fresh = read_head(&Method::POST, "/a/b", &HeaderMap::new()).unwrap();
        assert!(!fresh.id.is_empty());
    }
}
