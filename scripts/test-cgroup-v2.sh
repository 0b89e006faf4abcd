#!/usr/bin/env bash
# Proves the sandbox on real cgroup v2. This machine and CI's have cgroup v1 (the host's
# `cargo test` covers v1); production hosts have v2. So: build the sandbox crate's test binaries
# here, boot ONE guest kernel with cgroup v2 over this machine's own files (virtme-ng on QEMU),
# and run the chosen tests inside it as root. Exits non-zero if any test fails or the guest
# cannot be used, after a `cargo test`-style summary.
#
#   bash scripts/install-vm.sh && bash scripts/test-cgroup-v2.sh      # as root
#
# With `--bench`, the same guest runs the sandbox's start-up benchmark instead of the tests
# (`cargo bench -p livexec-sandbox --bench startup`: bare, cold and warm runs of python, node
# and `true`, side by side), so its figures exist for v2 too. Under TCG every figure is some
# 30 times the host's; compare the rows with each other (the bare row is the baseline), not
# with the host's. `N` (default 10) sets the runs per case.
#
# Environment (all optional):
#   LIVEXEC_TEST_TIME_FACTOR  wall-clock scale for the tests' limits in the guest (default 30;
#                             read by crates/sandbox/tests/common/mod.rs, 1 on the host)
#   LIVEXEC_VM_VENV           where scripts/install-vm.sh put virtme-ng (/opt/livexec-vm/venv)
#   LIVEXEC_VM_KERNEL         the guest kernel (default: the newest /boot/vmlinuz-*-amd64)
#   LIVEXEC_VM_TIMEOUT        seconds before the guest is given up on (default 1500)
#
# The guest, and what had to be worked around (Debian 12 host, Debian's 6.1 generic kernel in
# the guest, virtme-ng 1.42, measured 2026-11-30):
# - KVM: /dev/kvm exists but a guest hangs (generic kernel) or dies with a KVM internal error
#   (cloud kernel). --disable-kvm (TCG emulation) works, about 30 times slower: hence the time
#   factor, and a lean selection of tests (below).
# - The -cloud-amd64 kernel lacks 9p, which virtme-ng shares the host's root with ("Failed to
#   mount real root"): use the generic linux-image-amd64.
# - cgroup2 is mounted at /sys/fs/cgroup with cpuset cpu io memory hugetlb pids rdma misc: the
#   cpu, memory and pids controllers are all there (checked first thing, below).
# - The root is the host's / over 9p, read-only. Writable in the guest: /run (a tmpfs of the
#   guest's own, so the sandbox's /run/livexec needs no sharing) and, as throw-away overlays,
#   /tmp /var /etc /usr /lib /home /opt /srv. /root is not: it gets an overlay too
#   (--overlay-rwdir), since an isolation test plants a file there. The results come back
#   through one shared directory (--rwdir).
# - Everything in the guest starts in the root cgroup, where the kernel's "no internal
#   processes" rule does not apply. A production supervisor runs as a service in a delegated
#   cgroup instead (systemd Delegate=yes), so the guest makes ci.slice with memory, cpu and
#   pids delegated and starts each test binary alone in its own ci.slice/<binary>.service.
# - The host's PATH is not inherited: the interpreters' directories are exported.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

MODE=test
case ${1:-} in
  "") ;;
  --bench) MODE=bench ;;
  *) printf 'usage: %s [--bench]\n' "$0" >&2; exit 2 ;;
esac
BENCH_N=${N:-10}
FACTOR=${LIVEXEC_TEST_TIME_FACTOR:-30}
VENV=${LIVEXEC_VM_VENV:-/opt/livexec-vm/venv}
TIMEOUT=${LIVEXEC_VM_TIMEOUT:-1500}
KERNEL=${LIVEXEC_VM_KERNEL:-$( (ls /boot/vmlinuz-*-amd64 2>/dev/null || true) | sort -V | tail -n1)}

# Test binaries (crates/sandbox/tests/*.rs) run in the guest. Left out: the crate's unit tests
# (src/, against a fake cgroupfs: nothing in them depends on the kernel; they run on the host).
BINARIES=(cgroup cleanup supervisor_killed hostile isolation warm)

# Tests skipped in the guest, by exact name, each with why (the host runs them all, on v1).
# Everything else in BINARIES runs. Measured under TCG with two test threads: the whole hostile
# and isolation binaries took 227 s and 138 s, so only what the cgroup version can change runs,
# plus a sample of the isolation layers.
SKIPS=(
  # Decided by the supervisor's wall clock, RLIMIT_CPU, RLIMIT_FSIZE/tmpfs sizes, RLIMIT_NOFILE,
  # the output caps and the wait status: no cgroup involved, identical on v1 and v2.
  hostile::long_sleep_times_out
  hostile::cpu_time_limit_counts_as_timeout
  hostile::stdout_flood_keeps_exactly_the_cap
  hostile::stderr_flood_keeps_exactly_the_cap
  hostile::disk_fill_and_big_files_are_refused
  hostile::fd_exhaustion_hits_rlimit_nofile
  hostile::crashes_and_signals_are_reported_as_the_programs_own
  # The same memory.max path as python_memory_bomb_is_oom_killed, which runs (49 s here).
  hostile::node_memory_bomb_is_oom_killed
  # The jail's init reaping orphans (pid namespace); pids.max is covered by the fork and thread
  # bombs (47 s here).
  hostile::orphans_are_reaped_by_the_init
  # 12 interpreters at once on two emulated CPUs (57 s here), and it starves whatever test runs
  # beside it; every run in the guest goes through clone3(CLONE_INTO_CGROUP) anyway.
  hostile::concurrent_runs_are_independent
  # Isolation layers that do not depend on the cgroup version (mounts, /dev, seccomp, stdio
  # plumbing, a fresh network namespace per run). The sample that runs: uid/capabilities/nnp/seccomp
  # mode, pid namespace, /sys and host files hidden, read-only host paths, network cut off,
  # node, exit code + peak memory + CPU, platform errors, Landlock.
  isolation::tmp_is_private_and_size_limited
  isolation::hostname_and_environment_are_the_jails
  isolation::stdin_is_empty_by_default_and_delivers_given_bytes
  isolation::binary_output_is_byte_exact_and_streamed_in_chunks
  isolation::dev_has_working_devices_only_and_is_read_only
  isolation::mount_unshare_ptrace_and_clone3_are_denied
  isolation::no_run_finds_what_an_earlier_run_left_in_its_network_namespace
  # The same teardown on a panicking callback is part of cleanup::…, which runs.
  isolation::a_panicking_output_callback_still_tears_the_jail_down
)

die() { printf 'test-cgroup-v2: %s\n' "$*" >&2; exit 1; }
log() { printf '\n== %s\n' "$*"; }

[[ $(id -u) == 0 ]] || die "must run as root (the sandbox tests build real jails)"
[[ -x $VENV/bin/vng ]] || die "no $VENV/bin/vng: run scripts/install-vm.sh first"
[[ -n $KERNEL && -r $KERNEL ]] || die "no guest kernel /boot/vmlinuz-*-amd64: run scripts/install-vm.sh"
command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64: run scripts/install-vm.sh"
# The interpreters the tests run, as the host resolves them (pyenv's shim is not used inside:
# the real executable's directory goes on the guest's PATH). Resolved before virtme-ng's venv
# joins PATH: its python3 lives under /opt, which no jail mounts.
PY_BIN=$(dirname "$(python3 -c 'import sys; print(sys.executable)')")
NODE_BIN=$(dirname "$(command -v node)")
[[ -x $PY_BIN/python3 ]] || die "python3 not found in $PY_BIN"
# vng runs virtme-run and friends from its own venv.
export PATH="$VENV/bin:$PATH"

OUT=$(mktemp -d /tmp/livexec-v2.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
if [[ $MODE == bench ]]; then
  log "build the sandbox crate's start-up benchmark (host)"
  BINARIES=(startup) KIND=bench
  cargo bench -p livexec-sandbox --bench startup --no-run --message-format=json >"$OUT/build.json"
else
  log "build the sandbox crate's test binaries (host)"
  KIND=test
  cargo test -p livexec-sandbox --no-run --message-format=json >"$OUT/build.json"
fi
python3 - "$OUT/build.json" "$KIND" "${BINARIES[@]}" >"$OUT/binaries" <<'EOF'
import json, sys
kind, want = sys.argv[2], sys.argv[3:]
found = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["kind"] == [kind] and m["target"]["name"] in want:
        found[m["target"]["name"]] = m["executable"]
missing = [w for w in want if w not in found]
if missing:
    sys.exit(f"test binaries not built: {missing}")
for w in want:
    print(w, found[w])
EOF
cat "$OUT/binaries"
[[ $MODE == bench ]] && SKIPS=()
# A skip must name a test that exists: a renamed test would otherwise run unnoticed, or a
# typo skip nothing.
while read -r name path; do
  [[ $MODE == bench ]] || "$path" --list >"$OUT/$name.list"
done <"$OUT/binaries"
for s in "${SKIPS[@]}"; do
  grep -qx "${s#*::}: test" "$OUT/${s%%::*}.list" 2>/dev/null || die "SKIPS names no test: $s"
done
echo "skipped in the guest (${#SKIPS[@]}): ${SKIPS[*]}"

# The script the guest runs. Its output goes to the console (the CI log) and its summary and
# exit status to $OUT, which is shared read-write.
cat >"$OUT/guest.sh" <<EOF
#!/bin/bash
set -uo pipefail
export PATH="$PY_BIN:$NODE_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export LIVEXEC_TEST_TIME_FACTOR="$FACTOR" LIVEXEC_TEST_EXPECT_CGROUP=v2 RUST_BACKTRACE=1
OUT="$OUT" MODE="$MODE" N="$BENCH_N"
EOF
declare -p SKIPS >>"$OUT/guest.sh"
cat >>"$OUT/guest.sh" <<'EOF'
fail() { echo "GUEST: $*"; echo 1 >"$OUT/status"; exit 1; }
echo "guest: $(uname -r), $(nproc) CPUs, booted in $(cut -d' ' -f1 /proc/uptime) s (guest clock)"
cg=/sys/fs/cgroup
[[ $(stat -f -c %T $cg) == cgroup2fs ]] || fail "$cg is not cgroup2 in the guest"
ctrls=$(cat $cg/cgroup.controllers)
echo "cgroup2 controllers: $ctrls"
for c in memory cpu pids; do
  [[ " $ctrls " == *" $c "* ]] || fail "the guest's cgroup2 has no $c controller ($ctrls)"
done
[[ -w /run ]] || fail "/run is not writable in the guest (the sandbox's run dir)"
# A delegated subtree, as systemd gives a Delegate=yes service.
echo "+memory +cpu +pids" >$cg/cgroup.subtree_control || fail "cannot enable controllers at the root"
mkdir -p $cg/ci.slice
echo "+memory +cpu +pids" >$cg/ci.slice/cgroup.subtree_control || fail "cannot delegate to ci.slice"

# Starts test binary $1 ($2 = path) alone in its own service cgroup with the rest of the args.
run_bin() {
  local name=$1 bin=$2; shift 2
  local svc=$cg/ci.slice/$name.service
  mkdir -p "$svc"
  bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$svc" "$bin" "$@"
}

status=0
declare -A bin
while read -r name path; do bin[$name]=$path; done <"$OUT/binaries"

if [[ $MODE == bench ]]; then
  echo "== startup benchmark, N = $N (guest clock; the bare rows are the baseline)"
  N=$N run_bin startup "${bin[startup]}" --bench 2>&1 | tee "$OUT/startup.bench"
  rc=${PIPESTATUS[0]}
  grep -q '^cgroup mode: cgroup v2' "$OUT/startup.bench" || rc=1
  echo "$rc" >"$OUT/status"
  exit "$rc"
fi

# First: the sandbox must report cgroup v2 (LIVEXEC_TEST_EXPECT_CGROUP=v2), or nothing else runs.
echo "== cgroup::cgroup_mode_is_the_one_expected"
run_bin mode "${bin[cgroup]}" --exact cgroup_mode_is_the_one_expected --nocapture \
  2>&1 | tee "$OUT/mode.log"
grep -q '^test result: ok. 1 passed' "$OUT/mode.log" || fail "the sandbox does not use cgroup v2 in the guest"

while read -r name path; do
  args=(--test-threads=2 --exact)
  for s in "${SKIPS[@]}"; do
    [[ $s == "$name::"* ]] && args+=(--skip "${s#*::}")
  done
  echo "== $name (${#args[@]} args: ${args[*]})"
  start=$(date +%s)
  run_bin "$name" "$path" "${args[@]}" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  echo "$rc" >"$OUT/$name.rc"
  echo "== $name: exit $rc in $(( $(date +%s) - start )) s"
  (( rc == 0 )) || status=1
done <"$OUT/binaries"
# After every binary: no run cgroup of any supervisor is left in the delegated subtree.
left=$(find $cg/ci.slice -mindepth 3 -maxdepth 3 -path '*/livexec/*' -type d)
if [[ -n $left ]]; then
  echo "GUEST: run cgroups left behind: $left"
  status=1
else
  echo "== no run cgroup left under $cg/ci.slice/*/livexec"
fi
echo $status >"$OUT/status"
exit $status
EOF
chmod +x "$OUT/guest.sh"

log "boot one cgroup v2 guest ($(basename "$KERNEL"), TCG, 2 CPUs, 2 GiB) and run the tests (time factor $FACTOR)"
start=$(date +%s)
set +e
# Through a pipe: vng's console writer keeps a file offset of its own, so with stdout
# redirected to a file its output and this script's overwrote each other.
timeout --kill-after=30 "$TIMEOUT" vng --run "$KERNEL" --disable-kvm --memory 2G --cpus 2 \
  --rwdir "$OUT" --overlay-rwdir /root --exec "$OUT/guest.sh" </dev/null 2>&1 | cat
vng_rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))
echo "guest: vng exit $vng_rc after ${elapsed} s (boot included)"

if [[ $MODE == bench ]]; then
  guest_status=$(cat "$OUT/status" 2>/dev/null || echo "none")
  echo
  echo "cgroup v2 guest (TCG), start-up benchmark:"
  grep -E '^(cgroup mode|python|node|true|supervisor)' "$OUT/startup.bench" 2>/dev/null || true
  [[ $guest_status == 0 && $vng_rc == 0 ]] || { echo "the benchmark failed in the guest (status $guest_status, vng exit $vng_rc)"; exit 1; }
  exit 0
fi

# The summary, from every binary's `test result:` line.
passed=0 failed=0 ignored=0 filtered=0
for log in "$OUT"/*.log; do
  [[ $(basename "$log") == mode.log ]] && continue
  line=$(grep -E '^test result: ' "$log" | tail -n1 || true)
  re='([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored; [0-9]+ measured; ([0-9]+) filtered out'
  if ! [[ $line =~ $re ]]; then
    echo "no test result from $(basename "$log" .log) (crashed or cut off)"
    failed=$((failed + 1))
    continue
  fi
  passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
  ignored=$((ignored + BASH_REMATCH[3])) filtered=$((filtered + BASH_REMATCH[4]))
  # The exit status has the last word (a result line could come from a child process).
  rc=$(cat "${log%.log}.rc" 2>/dev/null || echo none)
  if [[ $rc != 0 && ${BASH_REMATCH[2]} == 0 ]]; then
    echo "$(basename "$log" .log) exited $rc with no failed test counted: counted as one"
    failed=$((failed + 1))
  fi
done
guest_status=$(cat "$OUT/status" 2>/dev/null || echo "none")
if [[ $guest_status == 0 && $failed == 0 && $vng_rc == 0 ]]; then
  verdict=ok
else
  verdict=FAILED
fi
echo
echo "cgroup v2 guest, all binaries together (filtered out = skipped in the guest):"
echo "test result: $verdict. $passed passed; $failed failed; $ignored ignored; 0 measured; $filtered filtered out; finished in ${elapsed}.00s"
if [[ $verdict != ok ]]; then
  [[ $guest_status == none ]] && echo "the guest did not finish (no status; vng exit $vng_rc: timeout is 124)"
  exit 1
fi
