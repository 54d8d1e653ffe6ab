//! Requests flowing through every router while trust changes: which router
//! took each call, when it was sent and answered, and what became of it.

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;
use serde_json::json;
use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Envelope, headers,
    router::{Answer, DirectEntry},
};

use super::harness::Outcome;

/// One call of a flow.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) router: usize,
    pub(crate) sent: Instant,
    pub(crate) answered: Instant,
    pub(crate) outcome: Outcome,
}

/// `orders.get` calls with one token, one after another through each router.
pub(crate) struct Flow {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Flow {
    /// Starts calling through every one of `entries` with `token`.
    pub(crate) fn start(entries: &[Arc<DirectEntry>], token: &str) -> Self {
        let (stop, calls) = (CancellationToken::new(), Arc::new(Mutex::new(Vec::new())));
        let tasks = entries
            .iter()
            .enumerate()
            .map(|(router, entry)| {
                let (entry, token) = (Arc::clone(entry), token.to_owned());
                let (stop, calls) = (stop.clone(), Arc::clone(&calls));
                tokio::spawn(async move {
                    while !stop.is_cancelled() {
                        let sent = Instant::now();
                        let answer = entry
                            .send(request(&token), "orders.get", Some(Duration::from_secs(10)))
                            .await
                            .unwrap();
                        let outcome = match answer {
                            Answer::Refused(r) => Outcome::Refused(r.code.as_str().to_owned()),
                            Answer::Reply(_) | Answer::Accepted => Outcome::Served,
                        };
                        calls.lock().push(Call {
                            router,
                            sent,
                            answered: Instant::now(),
                            outcome,
                        });
                    }
                })
            })
            .collect();
        Self { stop, tasks, calls }
    }

    /// Whether every router (of `routers`) has at least `n` calls `matching`.
    pub(crate) fn each_router_has(
        &self,
        routers: usize,
        n: usize,
        matching: impl Fn(&Call) -> bool,
    ) -> bool {
        let calls = self.calls.lock();
        (0..routers).all(|r| {
            calls
                .iter()
                .filter(|c| c.router == r && matching(c))
                .count()
                >= n
        })
    }

    /// Stops calling; every call made.
    pub(crate) async fn stop(self) -> Vec<Call> {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
        self.calls.lock().clone()
    }
}

fn request(token: &str) -> Envelope {
    let mut envelope = Envelope::new(serde_json::to_vec(&json!({"order_id": "none"})).unwrap())
        .with_content_type("application/json");
    envelope
        .headers
        .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
    envelope
}
