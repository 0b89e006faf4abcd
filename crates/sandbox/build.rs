//! Builds the jail's init (`init/main.rs` + `src/init.rs`) into a small static executable that
//! the library embeds (`include_bytes!`) and runs as every jail's pid 1. It is `#![no_std]`
//! and links nothing but itself (no C library, no start files): the C compiler is only the
//! linker driver.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/main.rs");
    println!("cargo:rerun-if-changed=src/init.rs");
    // `src/init.rs` is also a module of the library, where `livexec_init` is never set.
    println!("cargo::rustc-check-cfg=cfg(livexec_init)");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let exe = out.join("livexec-init");
    let status = Command::new(rustc)
        .args([
            "--edition=2021",
            "--crate-type=bin",
            "--crate-name=livexec_init",
            "--cfg=livexec_init",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args([
            "-C",
            "codegen-units=1",
            "-C",
            "lto=fat",
            "-C",
            "relocation-model=static",
        ])
        // A static executable at a fixed address: nothing to relocate at start, and no C
        // library or start files (`_start` is the program's own).
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "link-arg=-nostartfiles",
            "-C",
            "link-arg=-nostdlib",
            "-C",
            "link-arg=-static",
        ])
        .arg("-o")
        .arg(&exe)
        .arg("init/main.rs")
        .status()
        .expect("run rustc for the jail's init");
    assert!(
        status.success(),
        "building the jail's static init failed (init/main.rs, linked by the C compiler)"
    );
}
