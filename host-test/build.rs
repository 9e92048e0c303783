//! Embeds the connector component into `host-test`, so that the executable works wherever it
//! is copied or installed (`cargo install --path host-test`).
//!
//! The component is taken from `SFM_EMBED_COMPONENT` if set, else from the workspace's
//! `target/wasm32-wasip2/release/source_facebook_marketing.wasm` if it was built; otherwise it is
//! built here, into this build's own output folder (`cargo install` from a fresh checkout).
//! `SFM_EMBED_COMPONENT=none` builds without a component: one is then looked for at run time.
//! When nothing can be embedded (no `wasm32-wasip2` target installed), the build goes on with a
//! warning and `host-test` looks for the component at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM: &str = "source_facebook_marketing.wasm";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sfm_embedded)");
    println!("cargo::rerun-if-env-changed=SFM_EMBED_COMPONENT");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host-test lives in the workspace").to_path_buf();
    let built = root.join("target").join("wasm32-wasip2").join("release").join(WASM);
    println!("cargo::rerun-if-changed={}", built.display());

    let chosen = match std::env::var("SFM_EMBED_COMPONENT") {
        Ok(v) if v == "none" => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) if built.exists() => Some(built),
        Err(_) => build_component(&root),
    };
    match chosen {
        Some(path) if path.exists() => {
            println!("cargo::rerun-if-changed={}", path.display());
            println!("cargo::rustc-cfg=sfm_embedded");
            println!("cargo::rustc-env=SFM_EMBEDDED_COMPONENT={}", path.display());
        }
        Some(path) => {
            println!("cargo::warning=no component at {}; host-test will look for one at run time", path.display())
        }
        None => {}
    }
}

/// Builds the component into this build's output folder; `None` (with a warning) if it fails.
fn build_component(root: &Path) -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var("OUT_DIR").ok()?).join("component");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "-p", "source-facebook-marketing", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&out);
    // The outer build's flags and target are not the component's.
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"]
    {
        cmd.env_remove(var);
    }
    match cmd.status() {
        Ok(s) if s.success() => Some(out.join("wasm32-wasip2").join("release").join(WASM)),
        _ => {
            println!(
                "cargo::warning=could not build the component to embed (is the target installed? `rustup target add wasm32-wasip2`); host-test will look for one at run time"
            );
            None
        }
    }
}
