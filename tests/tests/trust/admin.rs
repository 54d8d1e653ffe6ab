//! Who may change trust state: the policy's admin, never a forger or a replayer.

use std::time::Duration;

use serde_json::json;
use tollgate_auth::{TrustChange, TrustEntry};
use tollgate_bus::{
    Address, Envelope, ErrorBody, SubscribeOptions, bus_topology,
    registry::Announcement,
    router::Answer,
    trust::{BroadcastKey, SignedChange},
};
use tollgate_tests::support::{Fixture, TestBus, now};

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_policys_admin_changes_trust_state_and_forged_broadcasts_are_ignored() {
    let t = TrustBus::start().await;
    let web = t.bus.token_with("web", 300, json!({"jti": "web-1"}));
    // A caller the policy does not allow is refused by the gate.
    let revoke_web = serde_json::to_value(TrustChange::RevokeConsumer {
        consumer: "alice".into(),
    })
    .unwrap();
    for route in ["tollgate.trust.revoke", "tollgate.trust.list"] {
        assert_eq!(
            t.trust("web", route, &revoke_web).await,
            Err("forbidden".into())
        );
    }
    // The admin's change kinds are bound to their route.
    let on_wrong_route = t
        .trust("alice", "tollgate.trust.consumers", &revoke_web)
        .await;
    assert_eq!(on_wrong_route, Err("invalid_trust_change".into()));

    // Forged broadcasts revoking `web`: unsigned, and signed with another key.
    let entry = TrustEntry {
        change: TrustChange::RevokeConsumer {
            consumer: "web".into(),
        },
        expires_at: None,
    };
    let forger = BroadcastKey::new(&[7; 32], t.bus.names.namespace());
    let signed = forger.seal(&entry, "forged-1", now());
    let unsigned = SignedChange {
        signature: String::new(),
        ..forger.seal(&entry, "forged-2", now())
    };
    let control = Address::new(t.bus.names.control_exchange(), "");
    for forged in [signed, unsigned] {
        let envelope: Envelope = Announcement::TrustChanged(forged)
            .to_envelope(None)
            .unwrap();
        t.fx.transport().publish(&control, &envelope).await.unwrap();
    }
    // A genuine change published after them: once both routers applied it,
    // they have judged the forged ones (each router's control queue is in order).
    let marker = t.bus.token_with("web", 300, json!({"jti": "marker-1"}));
    t.change("tollgate.trust.revoke", &revoke_token("marker-1"))
        .await;
    t.wait_refused_everywhere(&marker, "token_revoked").await;
    assert!(
        t.served_everywhere(&web).await,
        "a forged broadcast was applied"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trust_store_the_trust_routes_say_so() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let entry = bus.open_entry().await;
    let body = serde_json::to_value(revoke_token("x")).unwrap();
    let envelope = bus.request(&body, Some(&bus.token("alice")), None);
    let answer = entry
        .send(
            envelope,
            "tollgate.trust.revoke",
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let Answer::Reply(reply) = answer else {
        panic!("expected a reply, got {answer:?}");
    };
    let error = ErrorBody::from_envelope(&reply).unwrap();
    assert_eq!(error.error.code, "trust_store_unavailable");
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_genuine_broadcast_cannot_undo_a_later_change() {
    let t = TrustBus::start().await;
    let web = t.bus.token("web");
    // Whoever can read the control exchange can capture a genuine broadcast.
    let queue = t.bus.names.router_control_queue("eavesdropper");
    t.fx.declare(&bus_topology::control_listener(&t.bus.names, &queue))
        .await
        .unwrap();
    let mut heard =
        t.fx.transport()
            .subscribe(&queue, SubscribeOptions::prefetch(64))
            .await
            .unwrap();
    let disable = TrustChange::DisableConsumer {
        consumer: "web".into(),
    };
    let enable = TrustChange::EnableConsumer {
        consumer: "web".into(),
    };
    t.change("tollgate.trust.consumers", &disable).await;
    t.change("tollgate.trust.consumers", &enable).await;
    let captured = loop {
        let d = tokio::time::timeout(Duration::from_secs(5), heard.next())
            .await
            .unwrap()
            .unwrap();
        let envelope = d.envelope.clone();
        d.ack().await.unwrap();
        if let Ok(Announcement::TrustChanged(signed)) = Announcement::from_bytes(&envelope.payload)
            && signed.body.contains("enable_consumer")
        {
            break envelope;
        }
    };
    t.change("tollgate.trust.consumers", &disable).await;
    t.wait_refused_everywhere(&web, "token_revoked").await;

    // Replayed as captured: every router saw its id already.
    let control = Address::new(t.bus.names.control_exchange(), "");
    t.fx.transport().publish(&control, &captured).await.unwrap();
    let marker = t.bus.token_with("alice", 300, json!({"jti": "marker-2"}));
    t.change("tollgate.trust.revoke", &revoke_token("marker-2"))
        .await;
    t.wait_refused_everywhere(&marker, "token_revoked").await;
    for router in 0..2 {
        assert_eq!(
            t.call(router, &web).await,
            Outcome::Refused("token_revoked".into()),
            "router {router} took a replayed broadcast"
        );
    }
    t.stop().await;
}
