//! The service registry: every router builds the same table from the
//! announcements services publish on the control exchange, so routers hold no
//! state of their own and scale by starting more of them.

pub mod announce;
mod answer;
mod grants;
mod listener;
mod sweep;
mod table;

pub use announce::{Announcement, AnnouncementError, Registration};
pub use answer::RegistrationAnswer;
pub use grants::{RegistryGrant, RegistryGrants};
pub use listener::RegistryListener;
pub use table::{Change, RegistryTable, ServiceContract, ServiceView};
