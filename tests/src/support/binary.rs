//! The `tollgate` binary and the example services, for tests that run them as users do.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// `target/<profile>/tollgate`, built on first use if `cargo test` did not
/// build it (it builds the root package's binary only for its own tests).
///
/// # Panics
/// When the binary cannot be built.
pub fn tollgate_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let binary = profile_dir().join(format!("tollgate{}", std::env::consts::EXE_SUFFIX));
            // Always rebuild (a no-op when fresh), so a stale binary is never tested.
            cargo_build(&["--bin", "tollgate"], &binary);
            binary
        })
        .clone()
}

/// `target/<profile>/examples/<name>`, an example service of
/// `tollgate-services`, built (or found fresh) on first use per name.
///
/// # Panics
/// When the example cannot be built.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<parking_lot::Mutex<Vec<String>>> = OnceLock::new();
    let binary = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT.get_or_init(Default::default).lock();
    if built.iter().any(|b| b == name) {
        return binary;
    }
    cargo_build(&["-p", "tollgate-services", "--example", name], &binary);
    built.push(name.to_owned());
    binary
}

/// `target/<profile>`, the folder of the running test executable's profile.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// `cargo build ARGS` into this test run's target folder and profile.
///
/// # Panics
/// When the build fails or does not produce `binary`.
fn cargo_build(args: &[&str], binary: &Path) {
    let profile_dir = profile_dir();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut build = Command::new(env!("CARGO"));
    build
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    if profile == "release" {
        build.arg("--release");
    }
    let status = build
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("run cargo build");
    assert!(
        status.success() && binary.exists(),
        "cannot build {}",
        binary.display()
    );
}
