//! Which component `host-test` runs: the one named, one beside the executable or in a build's
//! `target/` folder, or the one built into it; the rest of the embedding is [`sfm_host::runtime`].

pub use sfm_host::runtime::*;

use anyhow::{Result, anyhow};
use std::path::{Path, PathBuf};

/// The component compiled into this executable at build time (see `host-test/build.rs`).
#[cfg(sfm_embedded)]
pub const EMBEDDED_COMPONENT: Option<&[u8]> = Some(include_bytes!(env!("SFM_EMBEDDED_COMPONENT")));
#[cfg(not(sfm_embedded))]
pub const EMBEDDED_COMPONENT: Option<&[u8]> = None;

/// File name of the component, beside the executable or in a build's `target/` folder.
pub const COMPONENT_FILE: &str = "source_facebook_marketing.wasm";

/// Where the component is looked for when `--component` is not given: `SFM_COMPONENT`, then a
/// `source_facebook_marketing.wasm` beside the executable, then the build's
/// `target/wasm32-wasip2/release/` (the executable in `target/<profile>/`), else `None`: use
/// the embedded one.
pub fn component_file() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SFM_COMPONENT") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.with_file_name(COMPONENT_FILE);
    if beside.exists() {
        return Some(beside);
    }
    let rel = Path::new("wasm32-wasip2").join("release").join(COMPONENT_FILE);
    // target/<profile>/host-test (or target/<profile>/deps/<test>) -> target/wasm32-wasip2/release
    exe.ancestors().skip(1).take(3).map(|dir| dir.join(&rel)).find(|c| c.exists())
}

/// The component file as [`component_file`] finds it, or where one would be built; for tests
/// and tools that need a path.
pub fn default_component_path() -> PathBuf {
    component_file().unwrap_or_else(|| Path::new("target").join("wasm32-wasip2").join("release").join(COMPONENT_FILE))
}

/// Which component [`locate`] runs, for messages.
pub fn describe_component(explicit: Option<&Path>) -> String {
    match explicit.map(Path::to_path_buf).or_else(component_file) {
        Some(p) => p.display().to_string(),
        None if EMBEDDED_COMPONENT.is_some() => "the component built into host-test".to_string(),
        None => "no component".to_string(),
    }
}

/// Loads `explicit` if given, else the component [`component_file`] finds, else the one
/// embedded in this executable.
pub fn locate(explicit: Option<&Path>) -> Result<Runtime> {
    match (explicit.map(Path::to_path_buf).or_else(component_file), EMBEDDED_COMPONENT) {
        (Some(path), _) => Runtime::load(&path),
        (None, Some(bytes)) => Runtime::from_bytes(bytes),
        (None, None) => Err(anyhow!(
            "no component: this host-test was built without one and none is beside it ({}) or in a build's target/ folder; pass --component or set SFM_COMPONENT",
            std::env::current_exe().map(|e| e.with_file_name(COMPONENT_FILE).display().to_string()).unwrap_or_default()
        )),
    }
}

/// The sha256 (hex) of the component [`locate`] runs, if it can be read.
pub fn component_sha256(explicit: Option<&Path>) -> Option<String> {
    use sha2::{Digest, Sha256};
    let bytes = match explicit.map(Path::to_path_buf).or_else(component_file) {
        Some(path) => std::fs::read(path).ok()?,
        None => EMBEDDED_COMPONENT?.to_vec(),
    };
    Some(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}
