//! Embeds the browser verifier (web/verifier/pkg, made by
//! scripts/build-web.sh) when it has been built; the node then serves it
//! at /verifier/pkg/. Without it the node still builds, and its /verify
//! page says how to add the verifier.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest.join("../../web");
    println!("cargo::rustc-check-cfg=cfg(web_verifier)");
    // A directory: cargo rescans it, so building the bundle later rebuilds.
    println!("cargo::rerun-if-changed={}", web.display());
    let pkg = web.join("verifier/pkg");
    if ["bitsage_verify_wasm_bg.wasm", "bitsage_verify_wasm.js"].iter().all(|f| pkg.join(f).is_file()) {
        println!("cargo::rustc-cfg=web_verifier");
        println!("cargo::rustc-env=BITSAGE_WEB_PKG={}", pkg.display());
    } else {
        println!(
            "cargo::warning=the browser verifier is not built (run scripts/build-web.sh, then rebuild); /verify will say so"
        );
    }
}
