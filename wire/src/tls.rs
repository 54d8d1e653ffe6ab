//! TLS for `amqps` URLs: rustls with the system's trusted roots (or the
//! bundle named by `SSL_CERT_FILE`), the server's name checked against its
//! certificate.

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::error::WireError;

/// Wraps `stream` in TLS to `host`.
pub(crate) async fn connect(
    stream: TcpStream,
    host: &str,
) -> Result<TlsStream<TcpStream>, WireError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| WireError::Tls(format!("`{host}` is not a server name: {e}")))?;
    let connector = TlsConnector::from(config()?);
    Ok(connector.connect(name, stream).await?)
}

/// The client configuration, built once per process.
fn config() -> Result<Arc<ClientConfig>, WireError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, WireError>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> Result<Arc<ClientConfig>, WireError> {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "A trusted root certificate could not be loaded.");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(WireError::Tls(
            "no trusted root certificate found (system store or SSL_CERT_FILE)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WireError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_that_is_no_server_name_is_a_tls_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let err = connect(stream, "not a name").await.unwrap_err();
        assert!(matches!(err, WireError::Tls(_)), "{err}");
    }
}
