//! Builds the jail's init (`init/main.rs` + `src/init.rs`) into a small static executable that
//! the library embeds (`include_bytes!`) and runs as every jail's pid 1. It needs only `std`
//! and the static C library (Debian/Ubuntu: `libc6-dev`, which comes with the C compiler).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/main.rs");
    println!("cargo:rerun-if-changed=src/init.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let exe = out.join("livexec-init");
    let status = Command::new(rustc)
        .args([
            "--edition=2021",
            "--crate-type=bin",
            "--crate-name=livexec_init",
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
        .args(["-C", "target-feature=+crt-static", "-C", "codegen-units=1"])
        .arg("-o")
        .arg(&exe)
        .arg("init/main.rs")
        .status()
        .expect("run rustc for the jail's init");
    assert!(
        status.success(),
        "building the jail's static init failed: it needs the static C library \
         (Debian/Ubuntu: apt-get install libc6-dev)"
    );
}
