//! Runs a program in the sandbox: `cargo run -p livexec-sandbox --example try -- /usr/bin/node -e 'console.log(1)'`.
use livexec_sandbox::{Command, Sandbox, SandboxConfig};

fn main() {
    let sb = Sandbox::new(SandboxConfig::default()).unwrap();
    eprintln!("mode: {}", sb.cgroup_mode());
    let mut args = std::env::args().skip(1);
    let prog = args.next().unwrap();
    let mut cmd = Command::new(prog);
    cmd.args(args);
    if let Ok(m) = std::env::var("MOUNT") {
        cmd.mount_ro(m);
    }
    let out = sb.run(&cmd, &mut |_, _| {});
    match out {
        Ok(o) => {
            print!("{}", String::from_utf8_lossy(&o.stdout));
            eprint!("{}", String::from_utf8_lossy(&o.stderr));
            eprintln!(
                "exit={:?} sig={:?} wall={} cpu={} mem={} to={} oom={} ol={:?}",
                o.exit_code,
                o.signal,
                o.wall_ms,
                o.cpu_ms,
                o.memory_peak_bytes,
                o.timed_out,
                o.oom_killed,
                o.output_limited
            );
        }
        Err(e) => eprintln!("ERROR: {e}"),
    }
}
