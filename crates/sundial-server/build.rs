//! Optionally links the `sundial` binary with its functions in a chosen order: when
//! `SUNDIAL_LINK_ORDER` names a file of symbol names (one per line), the linker places those
//! functions first and together. `scripts/build-dist.sh` writes that file from an
//! instruction-level trace of the same build serving requests, then relinks. Code pages are
//! mapped in 64 KiB at a time as they are first executed, so packing the executed functions
//! together keeps the server's resident code a fraction of its text.
//!
//! The option is `rust-lld`'s (Rust's default linker on x86_64 Linux); names that do not exist
//! in the build are skipped, so a stale file costs memory, never correctness.

fn main() {
    println!("cargo:rerun-if-env-changed=SUNDIAL_LINK_ORDER");
    let Ok(order) = std::env::var("SUNDIAL_LINK_ORDER") else {
        return;
    };
    if order.is_empty() {
        return;
    }
    println!("cargo:rerun-if-changed={order}");
    println!("cargo:rustc-link-arg-bin=sundial=-Wl,--symbol-ordering-file={order}");
    println!("cargo:rustc-link-arg-bin=sundial=-Wl,--no-warn-symbol-ordering");
}
