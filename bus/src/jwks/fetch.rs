//! One GET of a key set over HTTP or HTTPS (rustls, the system's roots),
//! bounded in time and size; redirects are not followed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, Uri, header};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::error::JwksError;

/// Longest wait for a whole key set (connect, TLS, headers and body).
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set body read; a larger one is refused unread.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Fetches key sets; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct JwksClient {
    inner: Inner,
    timeout: Duration,
    max_bytes: usize,
}

#[derive(Clone)]
enum Inner {
    /// http and https.
    Tls(Client<HttpsConnector<HttpConnector>, Empty<Bytes>>),
    /// http only: the host has no CA certificates to check a server with.
    Plain(Client<HttpConnector, Empty<Bytes>>),
}

impl JwksClient {
    /// A client trusting the system's CA certificates, with the default
    /// timeout and size limit. Without any CA certificate on the host, only
    /// `http://` URLs can be fetched (logged once here).
    pub fn new() -> Self {
        let inner = match HttpsConnectorBuilder::new().with_native_roots() {
            Ok(builder) => Inner::Tls(
                Client::builder(TokioExecutor::new())
                    .build(builder.https_or_http().enable_http1().build()),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "No CA certificates found: https JWKS URLs cannot be fetched.");
                Inner::Plain(Client::builder(TokioExecutor::new()).build_http())
            }
        };
        Self {
            inner,
            timeout: JWKS_FETCH_TIMEOUT,
            max_bytes: MAX_JWKS_BYTES,
        }
    }

    /// Sets the timeout of a whole fetch and the largest body read.
    pub fn with_limits(mut self, timeout: Duration, max_bytes: usize) -> Self {
        self.timeout = timeout;
        self.max_bytes = max_bytes;
        self
    }

    /// The body of a 2xx answer to `GET url`, as text. Errors when the URL
    /// is bad, the provider unreachable, the status not 2xx, the body over
    /// the size limit or not UTF-8, or the whole exchange over the timeout.
    pub async fn get(&self, url: &str) -> Result<String, JwksError> {
        let uri: Uri = url.parse().map_err(|_| JwksError::BadUrl(url.to_owned()))?;
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json, application/jwk-set+json")
            .header(header::USER_AGENT, "tollgate")
            .body(Empty::<Bytes>::new())
            .map_err(|e| JwksError::BadUrl(e.to_string()))?;
        let exchange = async {
            let response = match &self.inner {
                Inner::Tls(client) => client.request(request).await,
                Inner::Plain(client) => client.request(request).await,
            }
            .map_err(|e| JwksError::Unreachable(error_chain(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(JwksError::Status(status.as_u16()));
            }
            let body = Limited::new(response.into_body(), self.max_bytes)
                .collect()
                .await
                .map_err(|e| JwksError::Body(e.to_string()))?
                .to_bytes();
            String::from_utf8(body.to_vec()).map_err(|_| JwksError::Body("not UTF-8".into()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| JwksError::Timeout)?
    }
}

impl Default for JwksClient {
    fn default() -> Self {
        Self::new()
    }
}

/// The error and its causes on one line (hyper's top error says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A server answering every connection with `response` (none: silence).
    async fn server(response: Option<Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request).await;
                    match response {
                        Some(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        format!("http://{addr}/jwks")
    }

    fn response(status: &str, body: &str) -> Option<Vec<u8>> {
        Some(
            format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    #[tokio::test]
    async fn reads_a_body_within_the_limits() {
        let url = server(response("200 OK", r#"{"keys":[]}"#)).await;
        assert_eq!(
            JwksClient::new().get(&url).await.expect("fetched"),
            r#"{"keys":[]}"#
        );
    }

    #[tokio::test]
    async fn refuses_a_body_over_the_size_limit() {
        let url = server(response("200 OK", &"x".repeat(2048))).await;
        let client = JwksClient::new().with_limits(Duration::from_secs(5), 1024);
        assert!(matches!(client.get(&url).await, Err(JwksError::Body(_))));
    }

    #[tokio::test]
    async fn gives_up_on_a_provider_that_does_not_answer() {
        let url = server(None).await;
        let client = JwksClient::new().with_limits(Duration::from_millis(200), 1024);
        assert!(matches!(client.get(&url).await, Err(JwksError::Timeout)));
    }

    #[tokio::test]
    async fn a_status_other_than_2xx_is_an_error() {
        let url = server(response("302 Found", "")).await;
        assert!(matches!(
            JwksClient::new().get(&url).await,
            Err(JwksError::Status(302))
        ));
    }
}
