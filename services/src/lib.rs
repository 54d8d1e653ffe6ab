#![doc = include_str!("../README.md")]

mod admission;
mod caller;
pub mod central_auth;
mod credential;
mod dispatch;
mod error;
pub mod examples;
mod guard;
mod handler;
mod options;
mod panicked;
mod refuse;
mod registration;
mod request;
mod resume;
mod running;
mod service;

pub use caller::Caller;
pub use credential::TokenSource;
pub use error::{CallError, CentralAuthError, HandlerError, ServiceError, StoreError};
pub use handler::{BAD_PAYLOAD, HANDLER_FAILED, INVALID_REQUEST, UNKNOWN_METHOD};
pub use options::{DEFAULT_TIMEOUT, RequestOptions};
pub use request::Request;
pub use running::RunningService;
pub use service::{
    DEFAULT_ADMISSION_TIMEOUT, DEFAULT_HEARTBEAT, DEFAULT_PREFETCH, Service, ServiceBuilder,
};
pub use tollgate_bus as bus;
