//! The trust state's expiry and how its changes combine.

use super::*;

fn entry(change: TrustChange, expires_at: Option<u64>) -> TrustEntry {
    TrustEntry { change, expires_at }
}

fn jti(id: &str) -> TrustChange {
    TrustChange::RevokeToken {
        jti: id.into(),
        until: None,
    }
}

#[test]
fn expired_entries_are_swept_and_never_loaded() {
    let mut state = TrustState::from_entries(
        [
            entry(jti("old"), Some(100)),
            entry(jti("live"), Some(200)),
            entry(
                TrustChange::DisableConsumer {
                    consumer: "a".into(),
                },
                None,
            ),
        ],
        100,
    );
    assert_eq!(state.len(), 2, "the entry expiring at 100 is gone at 100");
    assert_eq!(state.sweep(199), 0);
    assert_eq!(state.sweep(200), 1);
    assert_eq!(
        state.sweep(u64::MAX),
        0,
        "consumer changes live until undone"
    );
    assert_eq!(state.len(), 1);
}

#[test]
fn an_entry_expires_when_its_change_says() {
    let now = 1_000;
    let change = TrustChange::RevokeIssuedBefore {
        consumer: Some("a".into()),
        before: now,
    };
    let expires_at = change.expires_at(now, 60, 0);
    let mut state = TrustState::new();
    state.record(entry(change, expires_at));
    assert_eq!(state.sweep(now + 59), 0);
    assert_eq!(state.sweep(now + 60), 1);
}

#[test]
fn a_later_change_replaces_and_an_undo_removes() {
    let mut state = TrustState::new();
    let revoke = TrustChange::RevokeConsumer {
        consumer: "a".into(),
    };
    state.record(entry(revoke, None));
    assert_eq!(state.len(), 1);
    state.record(entry(
        TrustChange::ReinstateConsumer {
            consumer: "a".into(),
        },
        None,
    ));
    assert!(state.is_empty());
    state.record(entry(
        TrustChange::DisableConsumer {
            consumer: "a".into(),
        },
        None,
    ));
    state.record(entry(
        TrustChange::EnableConsumer {
            consumer: "a".into(),
        },
        None,
    ));
    let (consumers, problems) = state.consumers(&[Consumer::new("a").with_enabled(false)]);
    assert!(problems.is_empty());
    assert!(
        consumers[0].enabled,
        "enable replaced disable, and overrides the config"
    );
}

#[test]
fn consumer_changes_apply_on_top_of_the_config_and_unknown_names_are_reported() {
    let mut state = TrustState::new();
    state.record(entry(
        TrustChange::DisableConsumer {
            consumer: "ghost".into(),
        },
        None,
    ));
    state.record(entry(
        TrustChange::RemoveCredential {
            consumer: Some("a".into()),
            kid: "k1".into(),
        },
        None,
    ));
    let key = crate::Credential::hmac(crate::Algorithm::HS256, &[7; 32])
        .expect("valid")
        .with_kid("k1");
    let (consumers, problems) = state.consumers(&[Consumer::new("a").with_credential(key)]);
    assert!(consumers[0].credentials.is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("ghost"));
}
