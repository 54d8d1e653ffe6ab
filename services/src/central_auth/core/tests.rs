use std::time::Duration;

use tollgate_auth::{SESSION_TOKEN_PREFIX, UsersFile, hash_password};

use super::*;
use crate::central_auth::store::MemorySessionStore;

const PW: &str = "hunter2-but-longer";

fn core(limits: SessionLimits) -> AuthCore {
    let mut users = UsersFile::default();
    for name in ["ann", "bob"] {
        users.upsert(User {
            name: name.into(),
            password_hash: hash_password(PW).unwrap(),
            groups: vec!["staff".into()],
            scopes: vec!["ledger.read".into()],
            disabled: false,
        });
    }
    AuthCore {
        users: Users::fixed(users),
        store: Arc::new(MemorySessionStore::new()),
        limits,
        throttle: LoginThrottle::new(Duration::from_millis(400), Duration::from_millis(800)),
        jwt: None,
        announcer: None,
        decoy_hash: tollgate_auth::decoy_hash().unwrap(),
        trust: None,
    }
}

fn login(user: &str, password: &str, source: &str) -> LoginRequest {
    LoginRequest {
        user: user.into(),
        password: password.into(),
        source: Some(source.into()),
    }
}

#[tokio::test]
async fn a_login_gives_a_new_session_that_introspection_names() {
    let core = core(SessionLimits::default());
    let a = core.login("web", login("ann", PW, "s")).await.unwrap();
    let b = core.login("web", login("ann", PW, "s")).await.unwrap();
    assert_ne!(a.token, b.token);
    assert!(a.token.starts_with(SESSION_TOKEN_PREFIX));
    let answer = core.introspect(&a.token).await.unwrap();
    let identity = answer.identity.unwrap();
    assert!(answer.active);
    assert_eq!(identity.consumer, "ann");
    assert_eq!(identity.groups, ["staff"]);
    assert_eq!(identity.expires_at, Some(a.expires_at));
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_fail_alike_and_then_back_off() {
    let core = core(SessionLimits::default());
    let wrong = core
        .login("web", login("ann", "nope", "s1"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), LOGIN_FAILED);
    let unknown = core.login("web", login("zed", PW, "s2")).await.unwrap_err();
    assert_eq!(
        (unknown.code(), unknown.message()),
        (wrong.code(), wrong.message())
    );
    // Blocked now, even with the right password, from the same source or account.
    let held = core.login("web", login("ann", PW, "s3")).await.unwrap_err();
    assert_eq!(held.code(), LOGIN_THROTTLED);
    tokio::time::sleep(core.throttle.max_delay()).await;
    assert!(core.login("web", login("ann", PW, "s3")).await.is_ok());
}

#[tokio::test]
async fn a_logout_ends_the_session_and_unknown_tokens_are_inactive() {
    let core = core(SessionLimits::default());
    let s = core.login("web", login("ann", PW, "s")).await.unwrap();
    assert!(core.logout(&s.token).await.unwrap().ended);
    let after = core.introspect(&s.token).await.unwrap();
    assert_eq!(after.code.as_deref(), Some("unknown_session"));
    assert!(!core.logout(&s.token).await.unwrap().ended);
    let jwt = core.introspect("eyJhbGciOiJIUzI1NiJ9.e30.x").await.unwrap();
    assert_eq!(
        jwt.code.as_deref(),
        Some("invalid_token"),
        "no JWT verifier"
    );
}

#[tokio::test]
async fn disabling_a_user_ends_every_session_of_theirs_and_stops_logins() {
    let core = core(SessionLimits::default());
    let b1 = core.login("web", login("bob", PW, "s")).await.unwrap();
    let b2 = core.login("web", login("bob", PW, "s")).await.unwrap();
    let a = core.login("web", login("ann", PW, "s")).await.unwrap();
    assert_eq!(core.disable_user("bob").await.unwrap().sessions_ended, 2);
    for t in [&b1.token, &b2.token] {
        assert!(!core.introspect(t).await.unwrap().active);
    }
    assert!(core.introspect(&a.token).await.unwrap().active);
    let refused = core.login("web", login("bob", PW, "s9")).await.unwrap_err();
    assert_eq!(refused.code(), LOGIN_FAILED);
    assert_eq!(
        core.disable_user("zed").await.unwrap_err().code(),
        "not_found"
    );
}

#[tokio::test]
async fn a_user_disabled_in_the_file_loses_a_live_session_at_its_next_use() {
    let core = core(SessionLimits::default());
    let s = core.login("web", login("ann", PW, "s")).await.unwrap();
    core.users
        .update(|f| {
            f.set_disabled("ann", true);
        })
        .unwrap();
    let answer = core.introspect(&s.token).await.unwrap();
    assert_eq!(answer.code.as_deref(), Some("user_disabled"));
    let again = core.introspect(&s.token).await.unwrap();
    assert_eq!(again.code.as_deref(), Some("unknown_session"), "removed");
}

#[tokio::test]
async fn the_memory_store_ends_idle_and_expired_sessions() {
    let limits = SessionLimits {
        idle_timeout: Duration::from_secs(10),
        absolute_lifetime: Duration::from_secs(30),
    };
    let store = MemorySessionStore::new();
    let hash = CredentialHash::of("tgs_a");
    store
        .create(&hash, &Session::start("ann", 100, limits), limits)
        .await
        .unwrap();
    assert!(matches!(
        store.touch(&hash, 109, limits).await.unwrap(),
        Touched::Live(_)
    ));
    assert!(matches!(
        store.touch(&hash, 118, limits).await.unwrap(),
        Touched::Live(_)
    ));
    assert_eq!(
        store.touch(&hash, 128, limits).await.unwrap(),
        Touched::Ended(tollgate_auth::SessionEnd::Idle)
    );
    assert_eq!(
        store.touch(&hash, 129, limits).await.unwrap(),
        Touched::Unknown
    );
    let busy = CredentialHash::of("tgs_b");
    store
        .create(&busy, &Session::start("ann", 100, limits), limits)
        .await
        .unwrap();
    for now in [105, 112, 119, 126] {
        assert!(matches!(
            store.touch(&busy, now, limits).await.unwrap(),
            Touched::Live(_)
        ));
    }
    assert_eq!(
        store.touch(&busy, 130, limits).await.unwrap(),
        Touched::Ended(tollgate_auth::SessionEnd::Expired)
    );
}
