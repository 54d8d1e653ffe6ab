//! The HTTP answers: a service's reply, 202, or the bus's JSON error body
//! with its status.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header, header::HeaderValue};
use tollgate_bus::{ERROR_CONTENT_TYPE, Envelope, ErrorBody, ErrorDetail, Rejection, headers};

use super::{request::REQUEST_ID, status};

/// A response with a whole body.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// The service's reply: 200, or the status of its error code for an error
/// reply; in the reply's content type.
pub(crate) fn reply(reply: Envelope, id: &str) -> HttpResponse {
    let code = reply.headers.get_str(headers::ERROR).map(str::to_owned);
    let mut response = Response::new(Full::new(reply.payload));
    *response.status_mut() = code.as_deref().map_or(StatusCode::OK, status::for_code);
    if let Some(ct) = reply
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(code) = code {
        challenge(&mut response, &code);
    }
    with_id(response, id)
}

/// 202: delivered, no reply awaited.
pub(crate) fn accepted(id: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(
        "preference-applied",
        HeaderValue::from_static("respond-async"),
    );
    with_id(response, id)
}

/// The gate's refusal, as the error body an AMQP caller gets.
pub(crate) fn refused(rejection: &Rejection, id: &str) -> HttpResponse {
    error_body(&ErrorBody::from_rejection(rejection), id)
}

/// An error decided by the HTTP entry itself (`stage` names who failed).
pub(crate) fn error(code: &str, stage: &str, message: impl Into<String>, id: &str) -> HttpResponse {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            stage: stage.to_owned(),
            message: message.into(),
        },
    };
    error_body(&body, id)
}

fn error_body(body: &ErrorBody, id: &str) -> HttpResponse {
    // Serializing three strings cannot fail.
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status::for_code(&body.error.code);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ERROR_CONTENT_TYPE),
    );
    challenge(&mut response, &body.error.code);
    if body.error.code == "method_not_allowed" {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    with_id(response, id)
}

fn challenge(response: &mut HttpResponse, code: &str) {
    if let Some(value) = status::challenge(code).and_then(|c| HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
}

fn with_id(mut response: HttpResponse, id: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_refusal_keeps_the_amqp_error_body_and_gets_its_status() {
        let response = refused(&Rejection::forbidden("no rule allows it"), "r-1");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[REQUEST_ID], "r-1");
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"tollgate\", error=\"insufficient_scope\""
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error.code, "forbidden");
        assert_eq!(body.error.stage, "authorize");
    }

    #[test]
    fn a_service_error_reply_gets_the_status_of_its_code() {
        let mut envelope = Envelope::new("{}").with_content_type("application/json");
        envelope.headers.insert(headers::ERROR, "out_of_stock");
        assert_eq!(
            reply(envelope, "r").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let ok = Envelope::new("{}").with_content_type("application/msgpack");
        let ok = reply(ok, "r");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "application/msgpack");
    }
}
