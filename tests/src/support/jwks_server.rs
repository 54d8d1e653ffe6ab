//! A tiny identity provider for remote-JWKS tests: serves one JSON Web Key
//! Set at `/jwks` over HTTP that a test replaces at will (key rotation),
//! counts the requests it gets, and can play dead (HTTP 503).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, service::service_fn};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use tollgate_auth::testkit::TestKey;

/// What the server answers, shared with its connection tasks.
#[derive(Default)]
struct State {
    body: Mutex<String>,
    requests: AtomicUsize,
    down: AtomicBool,
}

/// A local JWKS provider; stops when dropped.
pub struct JwksServer {
    addr: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl JwksServer {
    /// Starts serving the public keys of `keys` on a free local port.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(State::default());
        *state.body.lock() = key_set(keys);
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(Arc::clone(&state), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The URL of the key set.
    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// Serves the public keys of `keys` from now on.
    pub fn rotate(&self, keys: &[&TestKey]) {
        *self.state.body.lock() = key_set(keys);
    }

    /// Serves `body` as is from now on (garbage, a set that fails the checks).
    pub fn serve_raw(&self, body: &str) {
        body.clone_into(&mut self.state.body.lock());
    }

    /// Answers every request with 503 (`true`) or the key set again (`false`).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// How many requests the server got so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (status, body) = if state.down.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, String::new())
    } else if request.uri().path() == "/jwks" {
        (StatusCode::OK, state.body.lock().clone())
    } else {
        (StatusCode::NOT_FOUND, String::new())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

fn key_set(keys: &[&TestKey]) -> String {
    let keys: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
    json!({ "keys": keys }).to_string()
}
