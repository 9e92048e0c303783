//! What the host-test integration tests share.

use host_test::runtime::{Runtime, default_component_path};
use std::sync::OnceLock;

/// The built component, compiled once per test binary (and cached to disk by `Runtime::load`).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let path = default_component_path();
        Runtime::load(&path).unwrap_or_else(|e| {
            panic!(
                "cannot load the component at {}: {e:#}\nbuild it first: cargo build --release --target wasm32-wasip2 -p source-facebook-marketing",
                path.display()
            )
        })
    })
}
