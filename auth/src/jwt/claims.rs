//! The registered-claim checks: required claims, `exp`, `nbf`, `iat` and the token's
//! age, `iss`, `aud`, and typed `sub`/`jti`.

use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::jwt::config::{RegisteredClaim, VerifierConfig};

/// The latest `NumericDate` accepted: 9999-12-31T23:59:59Z. Anything later is an attack
/// on integer arithmetic, not a real expiry.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// What the checks read out of the claims, for the identity and the revocation check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub(crate) expires_at: u64,
    pub(crate) issued_at: Option<u64>,
    pub(crate) subject: Option<String>,
    pub(crate) token_id: Option<String>,
}

/// Checks the registered claims of an already signature-checked token at time `now`.
pub(crate) fn check(
    claims: &Map<String, Value>,
    now: u64,
    config: &VerifierConfig,
) -> Result<Checked, AuthError> {
    let leeway = config.leeway_secs;
    if let Some(missing) = RegisteredClaim::ALL
        .into_iter()
        .find(|c| config.requires(*c) && !claims.contains_key(c.name()))
    {
        tracing::debug!(
            auth.code = "claims_invalid",
            claim = missing.name(),
            "Refusing a token: a required claim is missing."
        );
        return Err(AuthError::ClaimsInvalid);
    }
    let expires_at = numeric_date(claims, "exp")?.ok_or_else(|| invalid("exp is missing"))?;
    if now >= expires_at.saturating_add(leeway) {
        return Err(fail(AuthError::TokenExpired, "exp is past"));
    }
    if let Some(max) = config.max_lifetime_secs
        && expires_at > now.saturating_add(max).saturating_add(leeway)
    {
        return Err(invalid("exp is beyond the maximum lifetime"));
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(fail(AuthError::TokenNotYetValid, "nbf is in the future"));
    }
    let issued_at = numeric_date(claims, "iat")?;
    if issued_at.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(fail(AuthError::TokenNotYetValid, "iat is in the future"));
    }
    if let (Some(max_age), Some(iat)) = (config.max_token_age_secs, issued_at)
        && now >= iat.saturating_add(max_age).saturating_add(leeway)
    {
        return Err(fail(
            AuthError::TokenExpired,
            "iat is older than the maximum token age",
        ));
    }
    if !config.issuers.is_empty() {
        let iss = string(claims, "iss")?.ok_or_else(|| invalid("iss is missing"))?;
        if !config.issuers.contains(&iss) {
            return Err(invalid("iss is not accepted"));
        }
    }
    if !config.audiences.is_empty() && !audience_matches(claims.get("aud"), &config.audiences)? {
        return Err(invalid("aud is missing or not accepted"));
    }
    if !config.refused_audiences.is_empty()
        && audience_matches(claims.get("aud"), &config.refused_audiences)?
    {
        return Err(invalid("aud names another purpose"));
    }
    Ok(Checked {
        expires_at,
        issued_at,
        subject: string(claims, "sub")?,
        token_id: string(claims, "jti")?,
    })
}

/// The scopes a token asks for: `scope` as a space-separated string or an array of strings.
pub(crate) fn scopes(claims: &Map<String, Value>) -> Result<Option<Vec<String>>, AuthError> {
    match claims.get("scope") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.split_whitespace().map(str::to_owned).collect())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("scope item"))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(invalid("scope is neither a string nor an array")),
    }
}

/// A `NumericDate` claim (RFC 7519 §2): a non-negative JSON number, fractions truncated.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, AuthError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(n) = value.as_u64() {
        return if n as f64 > MAX_NUMERIC_DATE {
            Err(invalid(name))
        } else {
            Ok(Some(n))
        };
    }
    match value.as_f64() {
        Some(n) if (0.0..=MAX_NUMERIC_DATE).contains(&n) => Ok(Some(n.trunc() as u64)),
        _ => Err(fail(AuthError::ClaimsInvalid, name)),
    }
}

fn string(claims: &Map<String, Value>, name: &'static str) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(name)),
    }
}

fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> Result<bool, AuthError> {
    match aud {
        None => Ok(false),
        Some(Value::String(a)) => Ok(accepted.contains(a)),
        Some(Value::Array(items)) => {
            let mut any = false;
            for item in items {
                let a = item.as_str().ok_or_else(|| invalid("aud item"))?;
                any |= accepted.iter().any(|x| x == a);
            }
            Ok(any)
        }
        Some(_) => Err(invalid("aud")),
    }
}

fn invalid(why: &'static str) -> AuthError {
    fail(AuthError::ClaimsInvalid, why)
}

fn fail(error: AuthError, why: &'static str) -> AuthError {
    tracing::debug!(
        auth.code = error.code(),
        reason = why,
        "Refusing a token's claims."
    );
    error
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn check_json(claims: Value, config: &VerifierConfig) -> Result<Checked, AuthError> {
        let Value::Object(map) = claims else {
            panic!("not an object")
        };
        check(&map, NOW, config)
    }

    fn ok(claims: Value) -> Result<Checked, AuthError> {
        check_json(claims, &VerifierConfig::default())
    }

    #[test]
    fn exp_is_required_and_numeric() {
        assert_eq!(ok(json!({})), Err(AuthError::ClaimsInvalid));
        assert_eq!(
            ok(json!({"exp": "2099-01-01"})),
            Err(AuthError::ClaimsInvalid)
        );
        assert_eq!(ok(json!({"exp": -1})), Err(AuthError::ClaimsInvalid));
        assert_eq!(ok(json!({"exp": 1e300})), Err(AuthError::ClaimsInvalid));
        assert_eq!(
            ok(json!({"exp": NOW + 60})).map(|c| c.expires_at),
            Ok(NOW + 60)
        );
    }

    #[test]
    fn a_fractional_exp_is_truncated() {
        assert_eq!(
            ok(json!({"exp": NOW as f64 + 60.9})).map(|c| c.expires_at),
            Ok(NOW + 60)
        );
    }

    #[test]
    fn expiry_honours_the_leeway_to_the_second() {
        assert!(ok(json!({"exp": NOW - 29})).is_ok());
        assert_eq!(ok(json!({"exp": NOW - 30})), Err(AuthError::TokenExpired));
    }

    #[test]
    fn exp_beyond_the_maximum_lifetime_is_invalid() {
        assert_eq!(
            ok(json!({"exp": NOW + 2 * 86_400})),
            Err(AuthError::ClaimsInvalid)
        );
        let unlimited = VerifierConfig {
            max_lifetime_secs: None,
            ..VerifierConfig::default()
        };
        assert!(check_json(json!({"exp": NOW + 2 * 86_400}), &unlimited).is_ok());
    }

    #[test]
    fn nbf_and_iat_in_the_future_are_not_yet_valid() {
        let exp = NOW + 60;
        assert_eq!(
            ok(json!({"exp": exp, "nbf": NOW + 31})),
            Err(AuthError::TokenNotYetValid)
        );
        assert_eq!(
            ok(json!({"exp": exp, "iat": NOW + 31})),
            Err(AuthError::TokenNotYetValid)
        );
        assert!(ok(json!({"exp": exp, "nbf": NOW + 30, "iat": NOW + 30})).is_ok());
        assert_eq!(
            ok(json!({"exp": exp, "nbf": "soon"})),
            Err(AuthError::ClaimsInvalid)
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_only_when_configured() {
        let config = VerifierConfig::default()
            .with_issuers(["idp"])
            .with_audiences(["bus"]);
        let exp = NOW + 60;
        assert!(
            check_json(
                json!({"exp": exp, "iss": "idp", "aud": ["x", "bus"]}),
                &config
            )
            .is_ok()
        );
        for claims in [
            json!({"exp": exp, "aud": "bus"}),
            json!({"exp": exp, "iss": "evil", "aud": "bus"}),
            json!({"exp": exp, "iss": "idp"}),
            json!({"exp": exp, "iss": "idp", "aud": "other"}),
            json!({"exp": exp, "iss": "idp", "aud": [1]}),
        ] {
            assert_eq!(check_json(claims, &config), Err(AuthError::ClaimsInvalid));
        }
        assert!(ok(json!({"exp": exp, "iss": "anyone"})).is_ok());
    }

    #[test]
    fn a_missing_required_claim_is_invalid_and_a_present_one_passes() {
        let config = VerifierConfig::default().with_required_claims(RegisteredClaim::ALL);
        let full = json!({"exp": NOW + 60, "nbf": NOW, "iat": NOW, "sub": "s", "jti": "j",
                          "iss": "i", "aud": "a"});
        assert!(check_json(full.clone(), &config).is_ok());
        for claim in RegisteredClaim::ALL {
            let mut partial = full.clone();
            partial.as_object_mut().map(|m| m.remove(claim.name()));
            assert_eq!(
                check_json(partial, &config),
                Err(AuthError::ClaimsInvalid),
                "{claim}"
            );
        }
    }

    #[test]
    fn a_token_older_than_the_maximum_age_is_expired_to_the_second() {
        let config = VerifierConfig::default().with_max_token_age_secs(600);
        let exp = NOW + 60;
        // 600 s of age plus 30 s of leeway.
        assert!(check_json(json!({"exp": exp, "iat": NOW - 629}), &config).is_ok());
        assert_eq!(
            check_json(json!({"exp": exp, "iat": NOW - 630}), &config),
            Err(AuthError::TokenExpired)
        );
        assert_eq!(
            check_json(json!({"exp": exp}), &config),
            Err(AuthError::ClaimsInvalid),
            "iat becomes required"
        );
        assert_eq!(
            check_json(json!({"exp": exp, "iat": NOW + 31}), &config),
            Err(AuthError::TokenNotYetValid)
        );
    }

    #[test]
    fn an_audience_of_another_purpose_is_refused_in_a_string_or_an_array() {
        let config = VerifierConfig::default().with_refused_audiences(["bus-registration"]);
        let exp = NOW + 60;
        assert!(check_json(json!({"exp": exp}), &config).is_ok());
        assert!(check_json(json!({"exp": exp, "aud": "bus"}), &config).is_ok());
        for aud in [
            json!("bus-registration"),
            json!(["bus", "bus-registration"]),
        ] {
            assert_eq!(
                check_json(json!({"exp": exp, "aud": aud}), &config),
                Err(AuthError::ClaimsInvalid)
            );
        }
    }

    #[test]
    fn sub_and_jti_must_be_strings() {
        let exp = NOW + 60;
        assert_eq!(
            ok(json!({"exp": exp, "sub": 7})),
            Err(AuthError::ClaimsInvalid)
        );
        assert_eq!(
            ok(json!({"exp": exp, "jti": ["x"]})),
            Err(AuthError::ClaimsInvalid)
        );
    }

    #[test]
    fn scope_is_a_string_or_an_array() {
        let Value::Object(a) = json!({"scope": "a b"}) else {
            unreachable!()
        };
        assert_eq!(scopes(&a), Ok(Some(vec!["a".into(), "b".into()])));
        let Value::Object(b) = json!({"scope": ["a"]}) else {
            unreachable!()
        };
        assert_eq!(scopes(&b), Ok(Some(vec!["a".into()])));
        let Value::Object(c) = json!({"scope": 1}) else {
            unreachable!()
        };
        assert_eq!(scopes(&c), Err(AuthError::ClaimsInvalid));
    }
}
