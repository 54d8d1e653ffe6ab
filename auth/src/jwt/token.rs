//! Taking a compact JWS apart before any key is chosen: size, shape, header, claims.
//!
//! Nothing here trusts the token: the claims are parsed only to find the consumer
//! and are believed only after the signature has been checked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::jwt::algorithm::Algorithm;
use crate::jwt::strict_json::{self, StrictJsonError};

/// The parts of a token that passed the structural checks.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// The header's `typ`, if it is a string.
    pub(crate) typ: Option<String>,
    pub(crate) claims: Map<String, Value>,
    /// The first two segments and the dot between them: what was signed.
    pub(crate) signing_input: &'t str,
    /// The third segment, still base64url.
    pub(crate) signature: &'t str,
}

/// Header parameters that, if present, make the token unacceptable: `crit` names
/// extensions we do not implement (RFC 7515 §4.1.11), `b64` changes what was signed
/// (RFC 7797), `enc`/`zip` mark a JWE.
const REFUSED_HEADERS: [&str; 4] = ["crit", "b64", "enc", "zip"];

/// Header parameters that point at keys. They are never followed; the key comes
/// only from the consumer store.
const IGNORED_KEY_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Checks size and shape, decodes header and claims. `max_bytes` is checked before
/// anything else is looked at; `max_depth` bounds JSON nesting before it is parsed.
pub(crate) fn parse(
    token: &str,
    max_bytes: usize,
    max_depth: usize,
) -> Result<Parsed<'_>, AuthError> {
    if token.is_empty() {
        return Err(AuthError::TokenMissing);
    }
    if token.len() > max_bytes {
        return Err(refuse(
            AuthError::TokenTooLarge,
            "token over the size limit",
        ));
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(refuse(AuthError::TokenMalformed, "not three segments"));
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let header = decode_object(header, max_depth, "header")?;
    let claims = decode_object(payload, max_depth, "claims")?;
    let (alg, kid) = read_header(&header)?;
    let typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
    Ok(Parsed {
        alg,
        kid,
        typ,
        claims,
        signing_input,
        signature,
    })
}

fn read_header(header: &Map<String, Value>) -> Result<(Algorithm, Option<String>), AuthError> {
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(refuse(AuthError::TokenMalformed, "no string alg")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(refuse(AuthError::AlgorithmNotAllowed, "alg none"));
    }
    let alg: Algorithm = alg
        .parse()
        .map_err(|_| refuse(AuthError::AlgorithmNotAllowed, "unsupported alg"))?;
    if let Some(name) = REFUSED_HEADERS
        .iter()
        .find(|name| header.contains_key(**name))
    {
        tracing::debug!(
            header = name,
            "Refusing a token with an unsupported header."
        );
        return Err(AuthError::TokenMalformed);
    }
    if let Some(name) = IGNORED_KEY_HEADERS
        .iter()
        .find(|name| header.contains_key(**name))
    {
        tracing::debug!(
            header = name,
            "Ignoring a key-locating header; it is never followed."
        );
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(refuse(AuthError::TokenMalformed, "kid is not a string")),
    };
    Ok((alg, kid))
}

fn decode_object(
    segment: &str,
    max_depth: usize,
    what: &'static str,
) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| {
        tracing::debug!(part = what, "Refusing a token: not base64url.");
        AuthError::TokenMalformed
    })?;
    if nesting_exceeds(&bytes, max_depth) {
        tracing::debug!(part = what, "Refusing a token: JSON nested too deeply.");
        return Err(AuthError::TokenMalformed);
    }
    strict_json::object_from_slice(&bytes).map_err(|e| {
        match e {
            StrictJsonError::DuplicateKey => {
                tracing::debug!(part = what, "Refusing a token: a JSON key appears twice.");
            }
            StrictJsonError::NotAnObject => {
                tracing::debug!(part = what, "Refusing a token: not a UTF-8 JSON object.");
            }
        }
        AuthError::TokenMalformed
    })
}

/// Whether `json` opens more than `max` arrays or objects inside one another, counted
/// without parsing (brackets inside strings do not count).
fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn refuse(error: AuthError, why: &'static str) -> AuthError {
    tracing::debug!(auth.code = error.code(), reason = why, "Refusing a token.");
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(claims))
    }

    #[test]
    fn parses_alg_kid_claims_and_the_signing_input() {
        let t = token(r#"{"alg":"ES256","kid":"k1"}"#, r#"{"sub":"a"}"#);
        let parsed = parse(&t, 8192, 16).expect("valid");
        assert_eq!(parsed.alg, Algorithm::ES256);
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.claims["sub"], "a");
        assert_eq!(parsed.signature, "c2ln");
        assert_eq!(format!("{}.c2ln", parsed.signing_input), t);
    }

    #[test]
    fn the_size_limit_comes_before_any_parsing() {
        let err = parse("not a token at all", 5, 16).expect_err("too large");
        assert_eq!(err, AuthError::TokenTooLarge);
    }

    #[test]
    fn refuses_headers_that_change_what_was_signed() {
        for header in [
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","b64":false}"#,
        ] {
            assert_eq!(
                parse(&token(header, "{}"), 8192, 16).err(),
                Some(AuthError::TokenMalformed)
            );
        }
    }

    #[test]
    fn claims_that_are_not_an_object_are_malformed() {
        assert_eq!(
            parse(&token(r#"{"alg":"HS256"}"#, "[1]"), 8192, 16).err(),
            Some(AuthError::TokenMalformed)
        );
    }

    #[test]
    fn a_key_repeated_in_the_header_or_the_claims_is_malformed() {
        for (header, claims) in [
            (r#"{"alg":"HS256","alg":"none"}"#, r#"{"sub":"a"}"#),
            (r#"{"alg":"HS256","kid":"a","kid":"b"}"#, r#"{"sub":"a"}"#),
            (r#"{"alg":"HS256"}"#, r#"{"exp":1,"exp":2}"#),
            (r#"{"alg":"HS256"}"#, r#"{"sub":"a","sub":"b"}"#),
            (r#"{"alg":"HS256"}"#, r#"{"scope":"a","scope":"b"}"#),
            (r#"{"alg":"HS256"}"#, r#"{"ctx":{"t":1,"t":2}}"#),
        ] {
            assert_eq!(
                parse(&token(header, claims), 8192, 16).err(),
                Some(AuthError::TokenMalformed),
                "{header} {claims}"
            );
        }
    }

    #[test]
    fn counts_nesting_outside_strings_only() {
        assert!(!nesting_exceeds(br#"{"a":"[[[[[[","b":[1]}"#, 2));
        assert!(nesting_exceeds(br#"{"a":[[1]]}"#, 2));
        assert!(!nesting_exceeds(br#"{"a":"\"[[["}"#, 1));
    }
}
