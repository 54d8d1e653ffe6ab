//! Which HTTP status answers which error code (README "The HTTP entry").
//!
//! Codes are matched as strings: the gate's codes, the HTTP entry's own, and
//! a service's own error codes, which get 422 unless listed.

use hyper::StatusCode;

/// The `realm` of every `WWW-Authenticate` challenge.
const REALM: &str = "tollgate";

/// The status of an error answer with `code`.
pub(crate) fn for_code(code: &str) -> StatusCode {
    match code {
        "token_missing"
        | "invalid_token"
        | "token_expired"
        | "token_revoked"
        | "token_too_large"
        | "ambiguous_credential" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "no_route" | "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "request_timeout" => StatusCode::REQUEST_TIMEOUT,
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "bad_payload" | "bad_reply_to" | "bad_request" | "unreadable" => StatusCode::BAD_REQUEST,
        "handler_failed" | "not_from_bus" | "dead_lettered" => StatusCode::BAD_GATEWAY,
        "auth_unavailable" | "bus_unavailable" | "reply_queue_lost" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        "timeout" => StatusCode::GATEWAY_TIMEOUT,
        // A service's own code (`out_of_stock`, …): the request was understood
        // and refused by the service.
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The `WWW-Authenticate` challenge (RFC 6750 §3) an answer with `code`
/// carries, if any: none names an error when no credential was sent.
pub(crate) fn challenge(code: &str) -> Option<String> {
    let error = match code {
        "token_missing" => return Some(format!("Bearer realm=\"{REALM}\"")),
        "invalid_token" | "token_expired" | "token_revoked" => "invalid_token",
        "token_too_large" | "ambiguous_credential" => "invalid_request",
        "forbidden" => "insufficient_scope",
        _ => return None,
    };
    Some(format!("Bearer realm=\"{REALM}\", error=\"{error}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_codes_are_401_with_an_rfc_6750_challenge() {
        for code in ["invalid_token", "token_expired", "token_revoked"] {
            assert_eq!(for_code(code), StatusCode::UNAUTHORIZED);
            assert_eq!(
                challenge(code).as_deref(),
                Some("Bearer realm=\"tollgate\", error=\"invalid_token\"")
            );
        }
        assert_eq!(
            challenge("token_missing").as_deref(),
            Some("Bearer realm=\"tollgate\"")
        );
        assert_eq!(
            challenge("ambiguous_credential").as_deref(),
            Some("Bearer realm=\"tollgate\", error=\"invalid_request\"")
        );
    }

    #[test]
    fn each_refusal_has_its_status() {
        assert_eq!(for_code("forbidden"), StatusCode::FORBIDDEN);
        assert_eq!(for_code("no_route"), StatusCode::NOT_FOUND);
        assert_eq!(for_code("too_large"), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(for_code("bad_payload"), StatusCode::BAD_REQUEST);
        assert_eq!(
            for_code("auth_unavailable"),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(for_code("timeout"), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(for_code("handler_failed"), StatusCode::BAD_GATEWAY);
        assert_eq!(challenge("no_route"), None);
    }

    #[test]
    fn a_service_s_own_code_is_422() {
        assert_eq!(for_code("out_of_stock"), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
