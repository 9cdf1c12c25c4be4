//! Tests that replay what a real lightningd recorded (`../shared`, beside
//! the repository) are marked ignored, "../shared/cln-fixtures is
//! absent", where it is: reported as not run rather than counted passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_shared_fixtures)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../shared");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/cln-fixtures");
    if !dir.is_dir() {
        println!("cargo::rustc-cfg=no_shared_fixtures");
    }
}
