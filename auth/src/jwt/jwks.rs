//! Keys from a JSON Web Key Set, selected by `kid`.
//!
//! Only the set given by the operator is read; a token's `jku`, `x5u`, `jwk` or
//! `x5c` header is never followed.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};

use crate::credential::Credential;
use crate::error::LoadError;
use crate::jwt::algorithm::Algorithm;
use crate::jwt::keys;

/// The signing keys of a JWKS document, each pinned to its `alg`.
///
/// Every key must have a `kid` and an `alg` of ours that fits its key type;
/// encryption keys (`"use": "enc"`) are skipped. `source` names the document in
/// errors. Errors on the first key that cannot be used: a half-loaded key set
/// would fail later, and less clearly.
pub fn credentials_from_jwks(source: &str, json: &str) -> Result<Vec<Credential>, LoadError> {
    let set: JwkSet = serde_json::from_str(json).map_err(|source_err| LoadError::Json {
        what: source.to_owned(),
        source: source_err,
    })?;
    let mut out = Vec::with_capacity(set.keys.len());
    for (i, jwk) in set.keys.iter().enumerate() {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            tracing::debug!(
                jwks.source = source,
                jwk.index = i,
                "Skipping an encryption key."
            );
            continue;
        }
        let name = format!("{source}#{i}");
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| LoadError::invalid_key(&name, "a JWKS key needs a `kid`"))?;
        let name = format!("{source}#{kid}");
        let alg: Algorithm = jwk
            .common
            .key_algorithm
            .ok_or_else(|| LoadError::invalid_key(&name, "a JWKS key needs an `alg`"))?
            .to_string()
            .parse()
            .map_err(|e| LoadError::invalid_key(&name, format!("{e}")))?;
        check_fits(&name, alg, &jwk.algorithm)?;
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| LoadError::invalid_key(&name, e.to_string()))?;
        if alg.is_symmetric() {
            let len = key.try_get_as_bytes().map_or(0, <[u8]>::len);
            if len < keys::min_secret_len(alg) {
                return Err(LoadError::invalid_key(
                    &name,
                    format!("{alg} secret is too short"),
                ));
            }
        } else {
            keys::check_public_key(&name, alg, &key)?;
        }
        out.push(Credential::from_parts(kid, alg, key));
    }
    Ok(out)
}

/// Refuses a key whose type or curve does not match its `alg` (e.g. an `oct` key
/// marked RS256, or a P-384 key marked ES256).
fn check_fits(name: &str, alg: Algorithm, params: &AlgorithmParameters) -> Result<(), LoadError> {
    use Algorithm as A;
    let fits = match params {
        AlgorithmParameters::RSA(rsa) => {
            matches!(alg, A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512)
                // base64url of a 2048-bit modulus is at least 342 characters.
                && rsa.n.len() >= 342
        }
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (alg, &ec.curve),
            (A::ES256, EllipticCurve::P256) | (A::ES384, EllipticCurve::P384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            alg == A::EdDSA && okp.curve == EllipticCurve::Ed25519
        }
        AlgorithmParameters::OctetKey(_) => alg.is_symmetric(),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(LoadError::invalid_key(
            name,
            format!("the key's type does not fit {alg}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCT: &str = r#"{"keys":[{"kty":"oct","kid":"s1","alg":"HS256",
        "k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY"}]}"#;

    #[test]
    fn loads_an_oct_key_pinned_to_its_alg() {
        let keys = credentials_from_jwks("test", OCT).expect("valid");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid(), Some("s1"));
        assert_eq!(keys[0].algorithm(), Algorithm::HS256);
    }

    #[test]
    fn refuses_a_key_without_alg() {
        let json = OCT.replace(r#""alg":"HS256","#, "");
        assert!(credentials_from_jwks("test", &json).is_err());
    }

    #[test]
    fn refuses_a_key_whose_type_does_not_fit_its_alg() {
        let json = OCT.replace("HS256", "RS256");
        assert!(credentials_from_jwks("test", &json).is_err());
    }

    #[test]
    fn skips_encryption_keys() {
        let json = OCT.replace(r#""kty":"oct","#, r#""kty":"oct","use":"enc","#);
        assert!(
            credentials_from_jwks("test", &json)
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn refuses_a_document_that_is_not_a_key_set() {
        assert!(matches!(
            credentials_from_jwks("test", "[]"),
            Err(LoadError::Json { .. })
        ));
    }
}
