//! A stand-in for the routers' registry, for tests that run services without
//! a router: it admits every registration, as a router answers one it accepts.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tollgate_bus::{
    Address, BusNames, SubscribeOptions, Transport, bus_topology,
    registry::{Announcement, RegistrationAnswer},
};

/// Listens on the control exchange of `names` and answers every `register`
/// with an acceptance on the instance's control queue, until aborted. Returns
/// once listening, so no registration published afterwards is missed.
///
/// # Panics
/// When the listening queue cannot be declared or consumed.
pub async fn admit_every_registration(
    transport: Arc<dyn Transport>,
    names: &BusNames,
) -> JoinHandle<()> {
    let queue = names.router_control_queue(&format!("stand-in-{}", uuid::Uuid::new_v4().simple()));
    transport
        .declare(&bus_topology::control_listener(names, &queue))
        .await
        .expect("declare the stand-in registry's queue");
    let mut announcements = transport
        .subscribe(&queue, SubscribeOptions::prefetch(16))
        .await
        .expect("consume the stand-in registry's queue");
    let names = names.clone();
    tokio::spawn(async move {
        while let Some(d) = announcements.next().await {
            if let Ok(Announcement::Register(r)) = Announcement::from_bytes(&d.envelope.payload) {
                let answer = RegistrationAnswer::Accepted {
                    service: r.service,
                    instance: r.instance.clone(),
                    router: "stand-in".into(),
                };
                if let Ok(envelope) = answer.to_envelope() {
                    let to = Address::queue(names.service_control_queue(&r.instance));
                    transport.publish(&to, &envelope).await.ok();
                }
            }
            d.ack().await.ok();
        }
    })
}
