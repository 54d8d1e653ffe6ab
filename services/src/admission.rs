//! Waiting to be admitted: a service registers, and serves only once a router
//! said yes.
//!
//! Every router answers a `register` on the instance's control queue. One
//! acceptance admits the instance (routers share one table). A refusal is
//! logged with its code and reason, and the registration is sent again after
//! an exponential back-off, as it is when no answer comes (no router yet, a
//! lost message); a fixed token will be refused again, but a [`TokenSource`]
//! may have a fresh one, and an operator may fix a grant meanwhile. Past the
//! bound, the service gives up with [`ServiceError::NotAdmitted`].
//!
//! [`TokenSource`]: crate::TokenSource

use std::time::Duration;

use tokio::time::Instant;
use tollgate_bus::{
    Subscription,
    registry::{Announcement, RegistrationAnswer},
};

use crate::{error::ServiceError, registration::Announcer};

/// Wait before the second registration; doubled after each, up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// The longest wait between two registrations.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Registers until a router accepts (returning its id) or `within` has passed.
///
/// Errors with [`ServiceError::NotAdmitted`] at the bound (naming the last
/// refusal, if any), or when the control queue's consumer ends.
pub(crate) async fn admitted(
    announcer: &Announcer,
    control: &mut Subscription,
    within: Duration,
) -> Result<String, ServiceError> {
    let deadline = Instant::now() + within;
    let mut retry = FIRST_RETRY;
    let mut last_refusal = None;
    loop {
        let register = Announcement::Register(announcer.registration.clone());
        if let Err(e) = announcer.announce(&register).await {
            tracing::warn!(service = %announcer.registration.service, error = %e, "Cannot register; trying again.");
        }
        let next_attempt = (Instant::now() + retry).min(deadline);
        let instance = announcer.registration.instance.as_str();
        while let Some(answer) = next_answer(control, instance, next_attempt).await? {
            match answer {
                RegistrationAnswer::Accepted { router, .. } => return Ok(router),
                RegistrationAnswer::Refused {
                    code,
                    reason,
                    router,
                    ..
                } => {
                    tracing::error!(
                        service = %announcer.registration.service,
                        instance = %announcer.registration.instance,
                        code = %code,
                        reason = %reason,
                        router = %router,
                        retry.ms = retry.as_millis() as u64,
                        "A router refused the registration; registering again after a back-off.",
                    );
                    last_refusal = Some(format!("{code}: {reason}"));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(ServiceError::NotAdmitted {
                after: within,
                last_refusal,
            });
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// The next answer to `instance` before `until`; `None` once it has passed.
/// Anything else on the control queue (`discover`: a registration is under
/// way anyway) is acked and skipped.
async fn next_answer(
    control: &mut Subscription,
    instance: &str,
    until: Instant,
) -> Result<Option<RegistrationAnswer>, ServiceError> {
    loop {
        let delivery = tokio::select! {
            () = tokio::time::sleep_until(until) => return Ok(None),
            delivery = control.next() => delivery,
        };
        let Some(delivery) = delivery else {
            return Err(ServiceError::TaskFailed(
                "the control queue's consumer ended before a router admitted the service".into(),
            ));
        };
        let answer = RegistrationAnswer::from_bytes(&delivery.envelope.payload)
            .ok()
            .filter(|a| a.instance() == instance);
        if let Err(e) = delivery.ack().await {
            tracing::debug!(error = %e, "Cannot ack a control message.");
        }
        if answer.is_some() {
            return Ok(answer);
        }
    }
}
