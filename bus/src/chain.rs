//! The interceptor chain every ingress message passes: sanitize → authenticate
//! → authorize → resolve → translate → stamp. Each step returns the envelope
//! or a [`Rejection`] as a value (tonic style); the driver times each step.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;

use crate::{
    envelope::Envelope,
    events,
    rejection::{Rejection, Stage},
};

mod authenticate;
mod authorize;
mod context;
mod mode;
mod resolve;
mod sanitize;
mod stamp;
mod translate;

pub use authenticate::Authenticate;
pub use authorize::{Authorize, Permit};
pub use context::{Context, Route};
pub use mode::{AuthMode, AuthModes, RouteAuth};
pub use resolve::Resolve;
pub use sanitize::{Limits, Sanitize};
pub use stamp::Stamp;
pub use translate::{DEFAULT_CONTENT_TYPE, Translate};

/// One step of the chain.
#[async_trait]
pub trait Interceptor: Send + Sync {
    /// The stage this step reports in rejections.
    fn stage(&self) -> Stage;

    /// A short name for spans and metrics.
    fn name(&self) -> &'static str;

    /// Passes the envelope on (possibly changed) or refuses it.
    async fn intercept(&self, envelope: Envelope, cx: &mut Context) -> Result<Envelope, Rejection>;
}

/// The steps, in order.
#[derive(Clone)]
pub struct Chain {
    steps: Vec<Arc<dyn Interceptor>>,
}

impl Chain {
    /// A chain of `steps`, run in order.
    pub fn new(steps: Vec<Arc<dyn Interceptor>>) -> Self {
        Self { steps }
    }

    /// Runs every step; stops at the first rejection.
    pub async fn run(
        &self,
        mut envelope: Envelope,
        cx: &mut Context,
    ) -> Result<Envelope, Rejection> {
        for step in &self.steps {
            let started = Instant::now();
            let result = step.intercept(envelope, cx).await;
            events::stage_timing(step.name(), started.elapsed());
            envelope = result?;
        }
        Ok(envelope)
    }
}
