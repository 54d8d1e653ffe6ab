//! Telling every router that sessions ended (`sessions_ended` on the control
//! exchange, with the service account's registration token: routers heed it
//! only from the account granted the auth service).

use std::sync::Arc;

use tollgate_auth::CredentialHash;
use tollgate_bus::{Address, BusNames, Transport, TransportError, registry::Announcement};

use crate::credential::TokenSource;

/// Publishes `sessions_ended` announcements.
#[derive(Clone)]
pub struct SessionsAnnouncer {
    transport: Arc<dyn Transport>,
    names: BusNames,
    service: String,
    credential: TokenSource,
}

impl SessionsAnnouncer {
    /// An announcer for the auth service `service`, signing with `credential`.
    pub fn new(
        transport: Arc<dyn Transport>,
        names: BusNames,
        service: impl Into<String>,
        credential: TokenSource,
    ) -> Self {
        Self {
            transport,
            names,
            service: service.into(),
            credential,
        }
    }

    /// Announces that `hashes` (and, for a disabled user, every session of
    /// `user`) ended; returns once the broker confirmed it.
    pub async fn ended(
        &self,
        hashes: Vec<CredentialHash>,
        user: Option<String>,
    ) -> Result<(), TransportError> {
        let announcement = Announcement::SessionsEnded {
            service: self.service.clone(),
            credential_hashes: hashes,
            user,
        };
        let token = self.credential.token();
        let envelope = announcement
            .to_envelope(token.as_deref())
            .map_err(|e| TransportError::InvalidTopology(e.to_string()))?;
        let to = Address::new(self.names.control_exchange(), "");
        self.transport.publish(&to, &envelope).await
    }
}

impl std::fmt::Debug for SessionsAnnouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionsAnnouncer")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}
