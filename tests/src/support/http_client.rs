//! A real HTTP/1.1 client (hyper's) for the tests of the HTTP entry: one
//! connection per request, the whole answer read.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, header::HeaderMap};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What came back.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl HttpAnswer {
    /// The value of header `name`, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} ({self:?})", self.body))
    }

    /// The `error.code` of a JSON error body (`None` for another body).
    pub fn code(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["error"]["code"].as_str().map(str::to_owned)
    }
}

/// `method path` on `addr` (`host:port`) with `headers` and `body`.
///
/// Errors when the connection fails or breaks before the whole answer.
pub async fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpAnswer, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Full::new(body.into()))?)
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok(HttpAnswer {
        status,
        headers,
        body,
    })
}

/// `POST path` on `addr` with a JSON `body` and `headers`.
///
/// # Panics
/// When no whole answer comes.
pub async fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpAnswer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(addr, "POST", path, &all, body.to_owned())
        .await
        .unwrap_or_else(|e| panic!("POST {path} on {addr}: {e}"))
}
