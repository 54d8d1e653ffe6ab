//! Turning key material (secrets, PEM) into `jsonwebtoken` keys, checked at load time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::error::LoadError;
use crate::jwt::algorithm::Algorithm;

/// The shortest HMAC secret accepted for `alg`: never under 32 bytes, and never
/// shorter than the hash output (RFC 7518 §3.2).
pub(crate) const fn min_secret_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Decodes a base64 secret (standard or URL-safe alphabet, padded or not).
pub(crate) fn decode_base64_secret(name: &str, secret: &str) -> Result<Vec<u8>, LoadError> {
    let trimmed = secret.trim().trim_end_matches('=');
    let standard = trimmed.replace('-', "+").replace('_', "/");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(standard)
        .map_err(|e| LoadError::invalid_key(name, format!("secret is not base64: {e}")))
}

/// The HMAC keys for a secret, refusing secrets that are too short for `alg`.
pub(crate) fn hmac_keys(
    name: &str,
    alg: Algorithm,
    secret: &[u8],
) -> Result<(DecodingKey, EncodingKey), LoadError> {
    if !alg.is_symmetric() {
        return Err(LoadError::invalid_key(
            name,
            format!("a secret cannot be used with {alg}"),
        ));
    }
    if secret.len() < min_secret_len(alg) {
        return Err(LoadError::invalid_key(
            name,
            format!(
                "{alg} secret is {} bytes, at least {} are required",
                secret.len(),
                min_secret_len(alg)
            ),
        ));
    }
    let decoding = DecodingKey::from_secret(secret).map_err(|e| jwt_err(name, &e))?;
    let encoding = EncodingKey::from_secret(secret).map_err(|e| jwt_err(name, &e))?;
    Ok((decoding, encoding))
}

/// The verification key for a PEM public key (SPKI, or PKCS#1 for RSA) under `alg`.
pub(crate) fn public_pem_key(
    name: &str,
    alg: Algorithm,
    pem: &[u8],
) -> Result<DecodingKey, LoadError> {
    use Algorithm as A;
    let key = match alg {
        A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
            DecodingKey::from_rsa_pem(pem)
        }
        A::ES256 | A::ES384 => DecodingKey::from_ec_pem(pem),
        A::EdDSA => DecodingKey::from_ed_pem(pem),
        A::HS256 | A::HS384 | A::HS512 => {
            return Err(LoadError::invalid_key(
                name,
                format!("{alg} takes a secret, not a PEM"),
            ));
        }
    };
    let key = key.map_err(|e| jwt_err(name, &e))?;
    check_public_key(name, alg, &key)?;
    Ok(key)
}

/// The signing key for a PEM private key (PKCS#8, or PKCS#1 for RSA) under `alg`.
pub(crate) fn private_pem_key(
    name: &str,
    alg: Algorithm,
    pem: &[u8],
) -> Result<EncodingKey, LoadError> {
    use Algorithm as A;
    let key = match alg {
        A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
            EncodingKey::from_rsa_pem(pem)
        }
        A::ES256 | A::ES384 => EncodingKey::from_ec_pem(pem),
        A::EdDSA => EncodingKey::from_ed_pem(pem),
        A::HS256 | A::HS384 | A::HS512 => {
            return Err(LoadError::invalid_key(
                name,
                format!("{alg} takes a secret, not a PEM"),
            ));
        }
    };
    key.map_err(|e| jwt_err(name, &e))
}

/// Checks the public key's shape now, so that a bad key fails at load time rather
/// than on the first message: RSA keys parse and have at least 2048 bits, EC points
/// are uncompressed and of the pinned curve's size (an ES384 key pinned as ES256 is
/// refused), Ed25519 keys are 32 bytes. The backend still checks the point per token.
pub(crate) fn check_public_key(
    name: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<(), LoadError> {
    use jsonwebtoken::DecodingKeyKind;

    let DecodingKeyKind::SecretOrDer(bytes) = key.kind() else {
        // RSA modulus/exponent from a JWK: checked by `jwks`.
        return Ok(());
    };
    let ok = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => aws_lc_rs::rsa::PublicKey::from_der(bytes)
            .map(|k| k.modulus_len() >= 256)
            .unwrap_or(false),
        Algorithm::ES256 => bytes.len() == 65 && bytes[0] == 4,
        Algorithm::ES384 => bytes.len() == 97 && bytes[0] == 4,
        Algorithm::EdDSA => bytes.len() == 32,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => true,
    };
    if ok {
        Ok(())
    } else {
        Err(LoadError::invalid_key(
            name,
            format!("not a valid public key for {alg}"),
        ))
    }
}

/// The standard base64 encoding of `bytes`, for PEM bodies.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn jwt_err(name: &str, e: &jsonwebtoken::errors::Error) -> LoadError {
    LoadError::invalid_key(name, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_hmac_secrets_shorter_than_the_hash() {
        assert!(hmac_keys("k", Algorithm::HS256, &[7; 31]).is_err());
        assert!(hmac_keys("k", Algorithm::HS256, &[7; 32]).is_ok());
        assert!(hmac_keys("k", Algorithm::HS512, &[7; 63]).is_err());
    }

    #[test]
    fn refuses_a_secret_for_an_asymmetric_algorithm() {
        assert!(hmac_keys("k", Algorithm::RS256, &[7; 64]).is_err());
    }

    #[test]
    fn decodes_both_base64_alphabets() {
        assert_eq!(
            decode_base64_secret("k", "-_8=").ok(),
            Some(vec![0xfb, 0xff])
        );
        assert_eq!(
            decode_base64_secret("k", "+/8").ok(),
            Some(vec![0xfb, 0xff])
        );
        assert!(decode_base64_secret("k", "not base64!").is_err());
    }

    #[test]
    fn refuses_garbage_pem() {
        assert!(public_pem_key("k", Algorithm::RS256, b"garbage").is_err());
        assert!(public_pem_key("k", Algorithm::HS256, b"garbage").is_err());
    }
}
