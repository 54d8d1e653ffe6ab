//! Routing: the registry names the service's contract. Runs after
//! authorization, so an unauthorized caller never learns whether a route exists.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;

use crate::{
    envelope::Envelope,
    registry::RegistryTable,
    rejection::{Rejection, Stage},
};

use super::{Context, Interceptor};

/// Looks the target service up in the registry.
pub struct Resolve {
    table: Arc<RegistryTable>,
}

impl Resolve {
    /// The step over `table`.
    pub fn new(table: Arc<RegistryTable>) -> Self {
        Self { table }
    }
}

#[async_trait]
impl Interceptor for Resolve {
    fn stage(&self) -> Stage {
        Stage::Route
    }

    fn name(&self) -> &'static str {
        "resolve"
    }

    async fn intercept(&self, envelope: Envelope, cx: &mut Context) -> Result<Envelope, Rejection> {
        if cx.permit().is_none() {
            return Err(Rejection::forbidden("not authorized"));
        }
        let service = cx
            .route
            .as_ref()
            .map(|r| r.service.clone())
            .unwrap_or_default();
        let contract = self
            .table
            .resolve(&service, Instant::now())
            .ok_or_else(|| Rejection::no_route(format!("no service `{service}` is registered")))?;
        cx.target = Some(contract);
        Ok(envelope)
    }
}
