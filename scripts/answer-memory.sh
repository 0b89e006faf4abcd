#!/usr/bin/env bash
# The server's peak memory while clients read large answers, for each binary given (a baseline
# and a candidate, side by side in one run). As root (the sandbox runs the program):
#   bash scripts/answer-memory.sh BASELINE_BIN CANDIDATE_BIN [READERS]
# Each binary serves on the embedded store; one execution prints 16 MiB of \x01 on stdout and
# on stderr (a ~192 MiB JSON answer: six bytes an output byte); READERS clients (default 8)
# read it at 1 MB/s for 15 s while the server's RSS is sampled every 100 ms. Prints peak RSS,
# the status codes the readers got, and the RSS 15 s after they left (what the allocator
# kept). (Not ?ids= naming it 100 times: a build without the budget answers that with a
# 19 GiB body.)
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,8p "$0"; exit 2; }
readers=${READERS:-8}
[ $# -ge 3 ] && readers=$3
bins=("$1")
[ $# -ge 2 ] && bins+=("$2")
port=39400
rss() { awk "/$2/{print int(\$2/1024)}" "/proc/$1/status"; }
for bin in "${bins[@]}"; do
  port=$((port + 1))
  dir=$(mktemp -d)
  h=http://127.0.0.1:$port
  LIVEXEC_BIND=127.0.0.1:$port DATABASE_URL=sqlite://$dir/db.sqlite LIVEXEC_SMOKE_TESTS=false \
    "$bin" serve > "$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do curl -sf "$h/health" > /dev/null && break; sleep 0.2; done
  body='{"language":"python","limits":{"output_bytes":16777216},"source_code":"import sys\nsys.stdout.buffer.write(b\"\\x01\"*(16<<20))\nsys.stderr.buffer.write(b\"\\x01\"*(16<<20))"}'
  id=$(curl -s -X POST "$h/executions?wait=true" -H 'content-type: application/json' -d "$body" \
    -o /dev/null -D - | awk 'tolower($1)=="location:"{print $2}' | tr -d '\r' | sed 's|.*/||')
  size=$(curl -s "$h/executions/$id" -o /dev/null -w '%{size_download}')
  base=$(rss $pid VmRSS)
  for _ in $(seq "$readers"); do
    curl -s --limit-rate 1M -m 15 -o /dev/null -w '%{http_code}\n' "$h/executions/$id" >> "$dir/codes" &
  done
  peak=0
  for _ in $(seq 150); do r=$(rss $pid VmRSS); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.1; done
  sleep 1 # the readers stop at 15 s
  sleep 15 # what the allocator gives back once the answers are gone
  printf '%s: answer %d MiB, RSS %d MiB idle, peak %d MiB with %d readers (%s), %d MiB 15 s after, VmHWM %d MiB\n' \
    "$bin" $((size >> 20)) "$base" "$peak" "$readers" "$(sort "$dir/codes" | uniq -c | xargs)" \
    "$(rss $pid VmRSS)" "$(rss $pid VmHWM)"
  kill $pid; wait $pid 2> /dev/null || true
  rm -rf "$dir"
done
