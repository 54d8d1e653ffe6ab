//! The `tollgate` binary, for tests that run it as users do.

use std::path::PathBuf;

/// `target/<profile>/tollgate`, built by `cargo test --workspace` with the root package.
///
/// # Panics
/// When the binary is missing (run `cargo build --bin tollgate`).
pub fn tollgate_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join(format!("tollgate{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --bin tollgate` (cargo test --workspace does)",
        binary.display()
    );
    binary
}
