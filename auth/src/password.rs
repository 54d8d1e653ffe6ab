//! Passwords, stored as argon2id hashes (PHC strings) with at least
//! m = 19 MiB, t = 2, p = 1 (OWASP's minimum for argon2id).

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::error::PasswordError;

/// Least memory of a stored hash, in KiB (19 MiB).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// Least passes of a stored hash.
pub const MIN_PASSES: u32 = 2;
/// Longest password accepted, in bytes (hashing cost does not grow with it,
/// but nobody needs more, and a login request stays small).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes `password` with argon2id at the minimum parameters and a fresh salt.
///
/// Errors on an empty or too long password.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_length(password)?;
    let params = Params::new(MIN_MEMORY_KIB, MIN_PASSES, 1, None)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Checks that `phc` is an argon2id hash at least as strong as the minimum.
pub fn check_hash(phc: &str) -> Result<(), PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::NotArgon2id)?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(PasswordError::NotArgon2id);
    }
    let params = Params::try_from(&parsed).map_err(|_| PasswordError::NotArgon2id)?;
    if params.m_cost() < MIN_MEMORY_KIB || params.t_cost() < MIN_PASSES || params.p_cost() < 1 {
        return Err(PasswordError::TooWeak {
            min_kib: MIN_MEMORY_KIB,
            min_t: MIN_PASSES,
        });
    }
    Ok(())
}

/// Whether `password` matches `phc` (an argon2id hash as [`check_hash`]
/// accepts; its own parameters are used). Takes tens of milliseconds: call
/// it off the async threads.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, PasswordError> {
    check_hash(phc)?;
    if check_length(password).is_err() {
        return Ok(false);
    }
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::NotArgon2id)?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash of a password nobody has, with the same cost as a real one: a login
/// for an unknown user checks against it, so it takes as long as for a real
/// user and does not tell which names exist.
pub fn decoy_hash() -> Result<String, PasswordError> {
    let random: [u8; 16] = rand::random();
    hash_password(&format!("{random:?}"))
}

fn check_length(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::BadLength {
            max: MAX_PASSWORD_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_the_minimum_and_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc).unwrap());
        assert!(!verify_password("wrong horse", &phc).unwrap());
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn weak_or_foreign_hashes_are_refused() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(matches!(
            check_hash(&weak),
            Err(PasswordError::TooWeak { .. })
        ));
        assert!(matches!(
            verify_password("pw", &weak),
            Err(PasswordError::TooWeak { .. })
        ));
        let argon2i = weak.replacen("argon2id", "argon2i", 1);
        assert!(matches!(
            check_hash(&argon2i),
            Err(PasswordError::NotArgon2id)
        ));
        assert!(matches!(
            check_hash("plain"),
            Err(PasswordError::NotArgon2id)
        ));
    }

    #[test]
    fn empty_and_huge_passwords_are_refused() {
        assert!(hash_password("").is_err());
        let phc = hash_password("x").unwrap();
        assert!(!verify_password(&"x".repeat(MAX_PASSWORD_BYTES + 1), &phc).unwrap());
    }
}
