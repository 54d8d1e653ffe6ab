//! The service registry: every router builds the same table from the
//! announcements services publish on the control exchange.

pub mod announce;

pub use announce::{Announcement, AnnouncementError, Registration};
