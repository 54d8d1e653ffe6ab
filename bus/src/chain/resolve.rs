//! Routing: the registry names the service's contract. Only a [`Permitted`]
//! message can be resolved, so an unauthorized caller never learns whether a
//! route exists, and only a [`Resolved`] one can be delivered.

use std::{sync::Arc, time::Instant};

use crate::{
    registry::{RegistryTable, ServiceContract},
    rejection::Rejection,
};

use super::Permitted;

/// A permitted message and the live service it goes to. Only [`Resolve`]
/// builds one, from a [`Permitted`]; delivery takes nothing else.
#[derive(Debug, Clone)]
pub struct Resolved {
    permit: Permitted,
    target: Arc<ServiceContract>,
}

/// Looks the target service up in the registry.
pub struct Resolve {
    table: Arc<RegistryTable>,
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
        Self { table }
    }

    /// The live contract of the permitted route's service, or `no_route`.
    pub fn check(&self, permit: Permitted) -> Result<Resolved, Rejection> {
        let service = permit.route().service();
        match self.table.resolve(service, Instant::now()) {
            Some(target) => Ok(Resolved { permit, target }),
            None => Err(Rejection::no_route(format!(
                "no service `{service}` is registered"
            ))),
        }
    }
}
