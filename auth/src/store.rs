//! Where consumers live: an in-memory table swappable at runtime, loadable from a file.

mod file;
mod memory;

pub use file::{ConsumersFile, load_consumers};
pub use memory::ConsumerStore;
pub(crate) use memory::ConsumerTable;
