//! The supervisor's side of a run: feeds stdin, drains stdout/stderr as they arrive (bounded,
//! never waiting for exit first), watches the status pipe for setup errors and `execve`, and
//! enforces the wall-clock limit and output caps by killing the jail's init (which takes the
//! whole pid namespace down).

use std::os::raw::c_int;
use std::time::{Duration, Instant};

use crate::init::REPORT_LEN;
use crate::sys;
use crate::Stream;

/// How long the program may take to reach `execve` after the go message.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for pipe EOF after the init exited (the namespace is already dead).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After a pass that read less than [`TRICKLE_BYTES`] of output, the output pipes rest this
/// long before the next read (the program keeps writing into the pipe meanwhile). A program
/// writing a byte at a time otherwise made the supervisor read, and its caller handle, one
/// chunk per byte: as much CPU outside the run's quota as the run itself used inside it.
/// Reading at most every 2 ms bounds that to a few hundred reads a second, and costs live
/// output at most 2 ms; the first output, the program's end and its last output are read at
/// once.
const TRICKLE_REST: Duration = Duration::from_millis(2);
/// A pass reading less than this (bytes) is a trickle (see [`TRICKLE_REST`]).
const TRICKLE_BYTES: usize = 16 * 1024;

/// The supervisor's fds of one run (all owned; closed on drop).
pub(crate) struct Fds {
    pub pidfd: c_int,
    pub stdin: c_int,
    pub stdout: c_int,
    pub stderr: c_int,
    pub status: c_int,
    /// The exit pipe: the init writes the program's raw wait status (4 bytes).
    pub exit: c_int,
}

impl Default for Fds {
    /// No fd yet (all -1).
    fn default() -> Self {
        Fds {
            pidfd: -1,
            stdin: -1,
            stdout: -1,
            stderr: -1,
            status: -1,
            exit: -1,
        }
    }
}

/// What was observed.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// `(step, errno)` reported by the jail's init before the program's `execve`.
    pub setup_error: Option<(u32, i32)>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall_us: u64,
    pub timed_out: bool,
    pub output_limited: Option<Stream>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The child never reported and the setup deadline passed.
    pub setup_timed_out: bool,
    /// The jail's init was reaped (else it is still exiting: the jail's teardown reaps it).
    pub init_reaped: bool,
}

struct Sink {
    buf: Vec<u8>,
    open: bool,
}

/// Runs the loop until the child (the jail's init) has exited and the pipes are drained.
pub(crate) fn supervise(
    pid: c_int,
    fds: &mut Fds,
    stdin: &[u8],
    wall_ms: u64,
    cap: usize,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Observed, (&'static str, i32)> {
    for fd in [fds.stdin, fds.stdout, fds.stderr, fds.status, fds.exit] {
        sys::set_nonblocking(fd).map_err(|e| ("fcntl(O_NONBLOCK)", e))?;
    }
    let start = Instant::now();
    let mut obs = Observed::default();
    let mut out = [
        Sink {
            buf: Vec::new(),
            open: true,
        },
        Sink {
            buf: Vec::new(),
            open: true,
        },
    ];
    let mut stdin_off = 0usize;
    let mut stdin_open = true;
    if stdin.is_empty() {
        sys::close(fds.stdin);
        fds.stdin = -1;
        stdin_open = false;
    }
    let mut status_open = true;
    let mut report = Vec::with_capacity(REPORT_LEN);
    let mut exec_at: Option<Instant> = None;
    let mut exited_at: Option<Instant> = None;
    // The program's wait status from the init, and when it arrived.
    let mut exit_rec: Vec<u8> = Vec::with_capacity(4);
    let mut program_end: Option<Instant> = None;
    let mut killed = false;
    let mut chunk = vec![0u8; 64 * 1024];
    // Until when the output pipes rest after a trickle (see TRICKLE_REST).
    let mut rest_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // Resting ends early when the program has ended or the jail is being killed: what is
        // left is read at once.
        let resting = rest_until
            .filter(|&t| now < t && program_end.is_none() && exited_at.is_none() && !killed);
        if let Some(t) = exited_at {
            if !(out[0].open || out[1].open) || now >= t + DRAIN_TIMEOUT {
                break;
            }
        }
        let deadline = match (exited_at, exec_at) {
            (Some(t), _) => t + DRAIN_TIMEOUT,
            (None, Some(t)) => t + Duration::from_millis(wall_ms),
            (None, None) => start + SETUP_TIMEOUT,
        };
        if now >= deadline && exited_at.is_none() && !killed {
            if exec_at.is_some() {
                obs.timed_out = true;
            } else {
                obs.setup_timed_out = true;
            }
            let _ = sys::pidfd_kill(fds.pidfd, libc::SIGKILL);
            killed = true;
        }
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(6);
        let mut push = |fd: c_int, events: i16| {
            pfds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
        };
        let output = |i: usize, fd: c_int| {
            if out[i].open && resting.is_none() {
                fd
            } else {
                -1
            }
        };
        push(output(0, fds.stdout), libc::POLLIN);
        push(output(1, fds.stderr), libc::POLLIN);
        push(if status_open { fds.status } else { -1 }, libc::POLLIN);
        push(if stdin_open { fds.stdin } else { -1 }, libc::POLLOUT);
        push(
            if exited_at.is_none() { fds.pidfd } else { -1 },
            libc::POLLIN,
        );
        push(
            if program_end.is_none() { fds.exit } else { -1 },
            libc::POLLIN,
        );
        let timeout = if killed && exited_at.is_none() {
            100
        } else {
            let until = resting.map_or(deadline, |t| t.min(deadline));
            // Rounded up: a rest of 0.5 ms waits 1 ms, not 0 (a busy loop).
            until
                .saturating_duration_since(now)
                .as_micros()
                .div_ceil(1000)
                .min(60_000) as c_int
                + if resting.is_some() { 0 } else { 1 }
        };
        sys::poll(&mut pfds, timeout).map_err(|e| ("poll", e))?;

        let mut read_now = 0usize;
        let mut read_any = false;
        for (i, stream) in [(0usize, Stream::Stdout), (1, Stream::Stderr)] {
            if pfds[i].revents == 0 {
                continue;
            }
            read_any = true;
            let fd = if i == 0 { fds.stdout } else { fds.stderr };
            loop {
                match sys::read(fd, &mut chunk) {
                    Ok(0) => {
                        out[i].open = false;
                        break;
                    }
                    Ok(n) => {
                        read_now += n;
                        let sink = &mut out[i];
                        let room = cap.saturating_sub(sink.buf.len());
                        let take = n.min(room);
                        if take > 0 {
                            sink.buf.extend_from_slice(&chunk[..take]);
                            on_output(stream, &chunk[..take]);
                        }
                        if n > room && obs.output_limited.is_none() {
                            obs.output_limited = Some(stream);
                            if !killed {
                                let _ = sys::pidfd_kill(fds.pidfd, libc::SIGKILL);
                                killed = true;
                            }
                        }
                        // A short read emptied the pipe: the next poll says when there is
                        // more. Reading on at once would take a byte-at-a-time writer's
                        // bytes one chunk each, past the rest below.
                        if n < chunk.len() {
                            break;
                        }
                    }
                    Err(libc::EAGAIN) | Err(libc::EINTR) => break,
                    Err(e) => return Err(("read output pipe", e)),
                }
            }
        }
        if read_any {
            rest_until =
                (read_now > 0 && read_now < TRICKLE_BYTES).then(|| Instant::now() + TRICKLE_REST);
        }
        if pfds[2].revents != 0 {
            let mut rec = [0u8; REPORT_LEN];
            match sys::read(fds.status, &mut rec) {
                Ok(0) => {
                    status_open = false;
                    if report.len() < REPORT_LEN {
                        exec_at = Some(Instant::now());
                    }
                }
                Ok(n) => {
                    report.extend_from_slice(&rec[..n]);
                    if report.len() >= REPORT_LEN {
                        let idx = u32::from_le_bytes([report[0], report[1], report[2], report[3]]);
                        let errno =
                            i32::from_le_bytes([report[4], report[5], report[6], report[7]]);
                        obs.setup_error = Some((idx, errno));
                    }
                }
                Err(libc::EAGAIN) | Err(libc::EINTR) => {}
                Err(e) => return Err(("read status pipe", e)),
            }
        }
        if stdin_open && pfds[3].revents != 0 {
            match sys::write(fds.stdin, &stdin[stdin_off..]) {
                Ok(n) => stdin_off += n,
                Err(libc::EAGAIN) | Err(libc::EINTR) => {}
                Err(_) => stdin_off = stdin.len(), // EPIPE: the program closed stdin
            }
            if stdin_off >= stdin.len() {
                sys::close(fds.stdin);
                fds.stdin = -1;
                stdin_open = false;
            }
        }
        if program_end.is_none() && pfds[5].revents != 0 {
            read_exit(fds.exit, &mut exit_rec, &mut program_end);
        }
        let init_exit = if exited_at.is_none() && pfds[4].revents != 0 {
            Some(sys::wait_pid(pid).map_err(|e| ("waitpid", e))?)
        } else {
            None
        };
        if program_end.is_none() && init_exit.is_some() {
            read_exit(fds.exit, &mut exit_rec, &mut program_end);
        }
        // The run is over when the init has reported the program's status and the output
        // pipes are at EOF (the init's own exit and the namespaces' teardown are left to the
        // jail's teardown, off the request path) — or when the init itself exited (a kill for
        // a limit took the whole namespace down).
        let program_done =
            exited_at.is_none() && program_end.is_some() && !out[0].open && !out[1].open;
        if init_exit.is_some() || program_done {
            let t = Instant::now();
            exited_at = Some(t);
            obs.init_reaped = init_exit.is_some();
            // The program's own status when the init reported it; else the init's (e.g. the
            // SIGKILL of a timeout or output cap, which took the whole namespace down).
            (obs.exit_code, obs.signal) = match <[u8; 4]>::try_from(exit_rec.as_slice()) {
                Ok(rec) => sys::decode_status(i32::from_le_bytes(rec)),
                Err(_) => init_exit.unwrap_or_default(),
            };
            let end = program_end.unwrap_or(t);
            obs.wall_us =
                exec_at.map_or(0, |e| end.saturating_duration_since(e).as_micros() as u64);
            if stdin_open {
                sys::close(fds.stdin);
                fds.stdin = -1;
                stdin_open = false;
            }
            if status_open {
                // Collect a report written just before exit.
                let mut rec = [0u8; REPORT_LEN];
                if let Ok(n) = sys::read(fds.status, &mut rec) {
                    report.extend_from_slice(&rec[..n]);
                }
                if report.len() >= REPORT_LEN && obs.setup_error.is_none() {
                    let idx = u32::from_le_bytes([report[0], report[1], report[2], report[3]]);
                    let errno = i32::from_le_bytes([report[4], report[5], report[6], report[7]]);
                    obs.setup_error = Some((idx, errno));
                }
                status_open = false;
            }
        }
    }
    let [o, e] = out;
    obs.stdout = o.buf;
    obs.stderr = e.buf;
    Ok(obs)
}

/// Reads the init's 4-byte report (non-blocking), noting when it was complete.
fn read_exit(fd: c_int, rec: &mut Vec<u8>, at: &mut Option<Instant>) {
    let mut buf = [0u8; 4];
    while rec.len() < 4 {
        match sys::read(fd, &mut buf[..4 - rec.len()]) {
            Ok(0) | Err(_) => return,
            Ok(n) => rec.extend_from_slice(&buf[..n]),
        }
    }
    at.get_or_insert_with(Instant::now);
}

impl Drop for Fds {
    fn drop(&mut self) {
        for fd in [
            self.pidfd,
            self.stdin,
            self.stdout,
            self.stderr,
            self.status,
            self.exit,
        ] {
            if fd >= 0 {
                sys::close(fd);
            }
        }
    }
}
