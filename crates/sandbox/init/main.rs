//! The jail's init as a standalone static executable, built by `build.rs` and embedded in the
//! library; the code is `src/init.rs`.
#![no_main]

#[path = "../src/init.rs"]
mod init;

/// C entry point (`#![no_main]`: no Rust runtime set-up, nothing but the init's own calls).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    init::run()
}
