//! One change of trust state, as an admin asks for it and routers apply it.

use serde::{Deserialize, Serialize};

use crate::credential::CredentialSpec;

/// A revocation or a consumer change.
///
/// Each change names an entry of the trust state ([`key`](Self::key)): a later
/// change with the same key replaces an earlier one (`enable` replaces
/// `disable`), and an undo ([`ReinstateConsumer`](Self::ReinstateConsumer))
/// removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TrustChange {
    /// Revokes the token whose `jti` is `jti`.
    RevokeToken {
        /// The token id.
        jti: String,
        /// The token's `exp` (seconds since the epoch), when known: the entry
        /// is kept until then instead of the longest token lifetime.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// Revokes every token whose `sub` is `subject`, issued by any consumer.
    RevokeSubject {
        /// The subject.
        subject: String,
        /// Until when its tokens may be valid, when known (as for a token).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// Revokes every token of a consumer, past and future, until reinstated.
    RevokeConsumer {
        /// The consumer's name.
        consumer: String,
    },
    /// Lifts [`RevokeConsumer`](Self::RevokeConsumer).
    ReinstateConsumer {
        /// The consumer's name.
        consumer: String,
    },
    /// Revokes the tokens issued (`iat`) before `before`, of one consumer or,
    /// without one, of every consumer.
    RevokeIssuedBefore {
        /// The consumer's name; `None` for every consumer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumer: Option<String>,
        /// The cut-off, seconds since the epoch.
        before: u64,
    },
    /// Refuses a consumer's tokens (`consumer_disabled`) until enabled.
    DisableConsumer {
        /// The consumer's name.
        consumer: String,
    },
    /// Enables a consumer (also one the config disables).
    EnableConsumer {
        /// The consumer's name.
        consumer: String,
    },
    /// Adds a key to a consumer (a key rotation's first step).
    AddCredential {
        /// The consumer's name.
        consumer: String,
        /// The key, given inline (`secret`, `secret_base64` or `public_key`)
        /// with its `kid` and `algorithm`; no private key.
        credential: CredentialSpec,
    },
    /// Removes the key with key id `kid`, whichever consumer holds it (a key
    /// rotation's last step), also a key of the config.
    RemoveCredential {
        /// The consumer holding it, when given: the key must be theirs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumer: Option<String>,
        /// The key id.
        kid: String,
    },
}

/// Why a change cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trust change: {0}")]
pub struct InvalidChange(pub String);

/// Longest name, id or key id a change may carry.
const MAX_NAME_BYTES: usize = 256;

impl TrustChange {
    /// The entry of the trust state it sets (or, for an undo, removes).
    pub fn key(&self) -> String {
        match self {
            Self::RevokeToken { jti, .. } => format!("jti:{jti}"),
            Self::RevokeSubject { subject, .. } => format!("subject:{subject}"),
            Self::RevokeConsumer { consumer } | Self::ReinstateConsumer { consumer } => {
                format!("revoked:{consumer}")
            }
            Self::RevokeIssuedBefore { consumer, .. } => {
                format!("issued-before:{}", consumer.as_deref().unwrap_or("*"))
            }
            Self::DisableConsumer { consumer } | Self::EnableConsumer { consumer } => {
                format!("enabled:{consumer}")
            }
            Self::AddCredential { credential, .. } => {
                format!("credential:{}", credential.kid.as_deref().unwrap_or(""))
            }
            Self::RemoveCredential { kid, .. } => format!("credential:{kid}"),
        }
    }

    /// Whether it undoes an entry rather than setting one.
    pub fn is_undo(&self) -> bool {
        matches!(self, Self::ReinstateConsumer { .. })
    }

    /// A short stable name of its kind, for logs (`revoke_token`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RevokeToken { .. } => "revoke_token",
            Self::RevokeSubject { .. } => "revoke_subject",
            Self::RevokeConsumer { .. } => "revoke_consumer",
            Self::ReinstateConsumer { .. } => "reinstate_consumer",
            Self::RevokeIssuedBefore { .. } => "revoke_issued_before",
            Self::DisableConsumer { .. } => "disable_consumer",
            Self::EnableConsumer { .. } => "enable_consumer",
            Self::AddCredential { .. } => "add_credential",
            Self::RemoveCredential { .. } => "remove_credential",
        }
    }

    /// Until when (seconds since the epoch) the entry matters: a token or
    /// subject revocation until its tokens expire (`until`, else `now` +
    /// `max_lifetime`), a cut-off until `before` + `max_lifetime`, each plus
    /// `leeway`; `None` (until undone) for consumer and key changes.
    ///
    /// `until` is not capped at `now` + `max_lifetime`: a token whose `exp`
    /// lies further ahead than the verifier accepts today is accepted later,
    /// once its `exp` is near enough.
    pub fn expires_at(&self, now: u64, max_lifetime: u64, leeway: u64) -> Option<u64> {
        let longest = now.saturating_add(max_lifetime);
        match self {
            Self::RevokeToken { until, .. } | Self::RevokeSubject { until, .. } => {
                Some(until.unwrap_or(longest).saturating_add(leeway))
            }
            Self::RevokeIssuedBefore { before, .. } => {
                Some(before.saturating_add(max_lifetime).saturating_add(leeway))
            }
            _ => None,
        }
    }

    /// Checks what can be checked without the consumers: names present and
    /// short, a credential given inline with a `kid`, an `algorithm` and no
    /// private key.
    pub fn validate(&self) -> Result<(), InvalidChange> {
        let name = |what: &str, value: &str| {
            if value.is_empty() || value.len() > MAX_NAME_BYTES {
                Err(InvalidChange(format!(
                    "{what} must be 1–{MAX_NAME_BYTES} bytes"
                )))
            } else {
                Ok(())
            }
        };
        match self {
            Self::RevokeToken { jti, .. } => name("jti", jti),
            Self::RevokeSubject { subject, .. } => name("subject", subject),
            Self::RevokeConsumer { consumer }
            | Self::ReinstateConsumer { consumer }
            | Self::DisableConsumer { consumer }
            | Self::EnableConsumer { consumer } => name("consumer", consumer),
            Self::RevokeIssuedBefore { consumer, .. } => {
                consumer.as_deref().map_or(Ok(()), |c| name("consumer", c))
            }
            Self::RemoveCredential { consumer, kid } => {
                consumer
                    .as_deref()
                    .map_or(Ok(()), |c| name("consumer", c))?;
                name("kid", kid)
            }
            Self::AddCredential {
                consumer,
                credential,
            } => {
                name("consumer", consumer)?;
                name("kid", credential.kid.as_deref().unwrap_or(""))?;
                if credential.public_key_file.is_some()
                    || credential.private_key.is_some()
                    || credential.private_key_file.is_some()
                {
                    return Err(InvalidChange(
                        "a credential is given inline, without a private key".into(),
                    ));
                }
                credential
                    .build(consumer, std::path::Path::new("."))
                    .map(drop)
                    .map_err(|e| InvalidChange(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opposite_changes_share_an_entry() {
        let disable = TrustChange::DisableConsumer {
            consumer: "a".into(),
        };
        let enable = TrustChange::EnableConsumer {
            consumer: "a".into(),
        };
        assert_eq!(disable.key(), enable.key());
        let revoke = TrustChange::RevokeConsumer {
            consumer: "a".into(),
        };
        let reinstate = TrustChange::ReinstateConsumer {
            consumer: "a".into(),
        };
        assert_eq!(revoke.key(), reinstate.key());
        assert!(reinstate.is_undo() && !revoke.is_undo());
    }

    #[test]
    fn token_revocations_expire_with_the_longest_token_lifetime() {
        let jti = |until| TrustChange::RevokeToken {
            jti: "t".into(),
            until,
        };
        assert_eq!(jti(None).expires_at(1000, 100, 5), Some(1105));
        assert_eq!(jti(Some(1050)).expires_at(1000, 100, 5), Some(1055));
        // Kept to the token's `exp`, even past what the verifier accepts now.
        assert_eq!(jti(Some(9999)).expires_at(1000, 100, 5), Some(10_004));
        let cutoff = TrustChange::RevokeIssuedBefore {
            consumer: None,
            before: 900,
        };
        assert_eq!(cutoff.expires_at(1000, 100, 5), Some(1005));
        let future_cutoff = TrustChange::RevokeIssuedBefore {
            consumer: Some("a".into()),
            before: 2000,
        };
        assert_eq!(future_cutoff.expires_at(1000, 100, 5), Some(2105));
        let disable = TrustChange::DisableConsumer {
            consumer: "a".into(),
        };
        assert_eq!(disable.expires_at(1000, 100, 5), None);
    }

    #[test]
    fn credentials_must_be_inline_public_and_named() {
        let add = |spec: CredentialSpec| TrustChange::AddCredential {
            consumer: "a".into(),
            credential: spec,
        };
        let good = CredentialSpec {
            kid: Some("k2".into()),
            algorithm: Some(crate::Algorithm::HS256),
            secret: Some("x".repeat(32)),
            ..CredentialSpec::default()
        };
        assert_eq!(add(good.clone()).validate(), Ok(()));
        let no_kid = CredentialSpec {
            kid: None,
            ..good.clone()
        };
        assert!(add(no_kid).validate().is_err());
        let file = CredentialSpec {
            secret: None,
            public_key_file: Some("/etc/passwd".into()),
            ..good
        };
        assert!(add(file).validate().is_err());
    }

    #[test]
    fn unknown_kinds_and_fields_are_refused() {
        let ok = r#"{"kind":"revoke_token","jti":"t1"}"#;
        assert!(serde_json::from_str::<TrustChange>(ok).is_ok());
        assert!(serde_json::from_str::<TrustChange>(r#"{"kind":"grant_all"}"#).is_err());
        let extra = r#"{"kind":"revoke_token","jti":"t1","also":"x"}"#;
        assert!(serde_json::from_str::<TrustChange>(extra).is_err());
    }
}
