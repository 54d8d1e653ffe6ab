//! Reading the token out of an `Authorization`-style header value, strictly.
//!
//! Exactly `Bearer <token>` is accepted (RFC 6750 §2.1): the scheme in any
//! letter case, one space, and a `b64token` — nothing before, nothing after,
//! no other whitespace. Lenient parsing (trimming, a bare token, a tab, a
//! trailing CRLF) lets two components read two different credentials from one
//! header; a strict one never has to guess.

use crate::error::AuthError;

/// The authentication scheme, compared without regard to letter case.
const SCHEME: &str = "Bearer";

/// The token of an `Authorization`-style header value `Bearer <token>`.
///
/// Errors with `token_missing` when there is no header, it is empty, or it is
/// `Bearer ` with nothing after the one space; with `token_malformed` for
/// anything else that is not exactly `Bearer <b64token>`: another or no
/// scheme, leading or trailing whitespace, more than one space, a tab, a line
/// break, or a character a `b64token` cannot hold (letters, digits,
/// `-._~+/`, then only `=`).
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = match header {
        None | Some("") => return Err(AuthError::TokenMissing),
        Some(value) => value,
    };
    let Some((scheme, token)) = value.split_at_checked(SCHEME.len()) else {
        return Err(malformed("no Bearer scheme"));
    };
    let Some(token) = token.strip_prefix(' ') else {
        return Err(malformed("no Bearer scheme and one space"));
    };
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(malformed("not the Bearer scheme"));
    }
    if token.is_empty() {
        return Err(AuthError::TokenMissing);
    }
    if !is_b64token(token) {
        return Err(malformed("not a b64token"));
    }
    Ok(token)
}

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN_CHAR[usize::from(b)])
}

/// Which bytes a `b64token` holds before its `=` padding: a table, since
/// every message's token is checked byte by byte (a few hundred bytes).
const B64TOKEN_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

fn malformed(why: &'static str) -> AuthError {
    tracing::debug!(
        auth.code = "token_malformed",
        reason = why,
        "Refusing an authorization header."
    );
    AuthError::TokenMalformed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_bearer_one_space_and_the_token_in_any_case() {
        assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(Some("bEARER abc")), Ok("abc"));
        assert_eq!(
            bearer_token(Some("BEARER a-b_c~d+e/f==")),
            Ok("a-b_c~d+e/f==")
        );
    }

    #[test]
    fn no_header_an_empty_one_or_nothing_after_the_scheme_is_missing() {
        assert_eq!(bearer_token(None), Err(AuthError::TokenMissing));
        assert_eq!(bearer_token(Some("")), Err(AuthError::TokenMissing));
        assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::TokenMissing));
    }

    #[test]
    fn refuses_every_other_shape_as_malformed() {
        for value in [
            "abc",
            "Bearer",
            "Bearer  abc",
            "Bearer  ",
            " Bearer abc",
            "Bearer abc ",
            "Bearer abc\n",
            "Bearer abc\r\n",
            "Bearer\tabc",
            "Bearer abc def",
            "Bearer abc,Bearer def",
            "Basic abc",
            "Bearerabc",
            "Token abc",
            "Bearer =",
            "Bearer a=b",
            "Bearer é",
            "Beärer abc",
        ] {
            assert_eq!(
                bearer_token(Some(value)),
                Err(AuthError::TokenMalformed),
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_table_holds_exactly_rfc_6750_s_token_characters() {
        let allowed: Vec<u8> = (0..=255u8)
            .filter(|&b| B64TOKEN_CHAR[usize::from(b)])
            .collect();
        let expected: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(*b"-._~+/")
            .collect::<std::collections::BTreeSet<u8>>()
            .into_iter()
            .collect();
        assert_eq!(allowed, expected);
    }
}
