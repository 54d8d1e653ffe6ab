//! Routing: the registry names the service's contract. Only a [`Permitted`]
//! message can be resolved, so an unauthorized caller never learns whether a
//! route exists, and only a [`Resolved`] one can be delivered.

use std::sync::Arc;

use crate::{
    registry::{RegistryTable, ServiceContract},
    rejection::Rejection,
    translate::{Codec, Format},
    trust::TRUST_SERVICE,
};

use super::Permitted;

/// A permitted message and the live service it goes to. Only [`Resolve`]
/// builds one, from a [`Permitted`]; delivery takes nothing else.
#[derive(Debug, Clone)]
pub struct Resolved {
    permit: Permitted,
    target: Arc<ServiceContract>,
}

/// Looks the target service up in the registry; the router's own service
/// (`tollgate`, JSON) is always there.
pub struct Resolve {
    table: Arc<RegistryTable>,
    own: Arc<ServiceContract>,
}

impl Resolved {
    /// The permit it was resolved for.
    pub fn permit(&self) -> &Permitted {
        &self.permit
    }

    /// What the target service speaks.
    pub fn target(&self) -> &ServiceContract {
        &self.target
    }
}

impl Resolve {
    /// The step over `table`.
    pub fn new(table: Arc<RegistryTable>) -> Self {
        let own = ServiceContract {
            service: TRUST_SERVICE.to_owned(),
            content_type: Codec::Json.content_type().to_owned(),
            format: Format {
                codec: Codec::Json,
                schema_version: "1".to_owned(),
            },
            assertion: tollgate_auth::AssertionAlg::EdDSA,
        };
        Self {
            table,
            own: Arc::new(own),
        }
    }

    /// The live contract of the permitted route's service, or `no_route`.
    pub fn check(&self, permit: Permitted) -> Result<Resolved, Rejection> {
        let service = permit.route().service();
        if service == TRUST_SERVICE {
            let target = Arc::clone(&self.own);
            return Ok(Resolved { permit, target });
        }
        match self.table.resolve(service) {
            Some(target) => Ok(Resolved { permit, target }),
            None => Err(Rejection::no_route(format!(
                "no service `{service}` is registered"
            ))),
        }
    }
}
