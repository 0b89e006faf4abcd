#!/usr/bin/env bash
# Installs the toolchains that runtimes/*.toml run, as root, from Debian packages and npm only
# (no other downloads). Idempotent: what is already there is left alone, so a second run only
# checks (about a second). `.ci/run` calls it before the tests; the README names it.
#
#   sudo bash scripts/install-toolchains.sh          # install what is missing
#   bash scripts/install-toolchains.sh --check       # list what is missing, exit 1 if anything is
#
# What the machine is expected to bring itself (it is not installed here): Python 3 (pyenv or
# Debian's python3), Node.js with npm, and Rust through rustup for `rustc`. Where Debian's package
# of one of those is absent *and* the command is missing, the Debian package is installed instead.
set -euo pipefail

# The TypeScript compiler, pinned: 5.x is plain JavaScript run by the node the sandbox already
# runs (7.x is a native binary started through a node wrapper: two processes, another runtime).
TYPESCRIPT_VERSION="5.9.3"
# Node's type definitions, so that TypeScript programs may use `process.stdin`, `require` …;
# the major version follows the node the machine has (20).
TYPES_NODE_VERSION="20.19.43"
# Installed under /usr/local (mounted in every jail as part of /usr), not in a user's home.
NPM_PREFIX="/usr/local"

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

log() { printf '== %s\n' "$*" >&2; }

# command → Debian package that provides it (only consulted when the command is missing).
declare -A PACKAGE_OF=(
  [gcc]=gcc
  [g++]=g++
  [javac]=openjdk-17-jdk-headless
  [java]=openjdk-17-jdk-headless
  [go]=golang-go
  [ruby]=ruby
  [php]=php-cli
  [lua5.4]=lua5.4
  [sqlite3]=sqlite3
  [bash]=bash
  [perl]=perl
  [node]=nodejs
  [python3]=python3
  [rustc]=rustc
)
ORDER=(gcc g++ javac java go ruby php lua5.4 sqlite3 bash perl node python3 rustc)

missing=()
for cmd in "${ORDER[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg="${PACKAGE_OF[$cmd]}"
    [[ " ${missing[*]:-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

ts_ok=0
types_json="$NPM_PREFIX/lib/node_modules/@types/node/package.json"
if command -v tsc >/dev/null 2>&1 && [[ "$(tsc --version 2>/dev/null)" == "Version $TYPESCRIPT_VERSION" ]] &&
  grep -q "\"version\": \"$TYPES_NODE_VERSION\"" "$types_json" 2>/dev/null; then
  ts_ok=1
fi

if ((check_only)); then
  ((${#missing[@]})) && log "missing Debian packages: ${missing[*]}"
  ((ts_ok)) || log "missing: typescript@$TYPESCRIPT_VERSION @types/node@$TYPES_NODE_VERSION (npm)"
  ((${#missing[@]} == 0 && ts_ok)) && log "every toolchain is installed"
  ((${#missing[@]} == 0 && ts_ok))
  exit
fi

if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    log "installing ${missing[*]} needs root"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi

if ((ts_ok == 0)); then
  if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: installing Debian's npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  log "npm install -g typescript@$TYPESCRIPT_VERSION @types/node@$TYPES_NODE_VERSION (prefix $NPM_PREFIX)"
  npm install -g --prefix "$NPM_PREFIX" --no-fund --no-audit --loglevel=error \
    "typescript@$TYPESCRIPT_VERSION" "@types/node@$TYPES_NODE_VERSION" >/dev/null
else
  log "typescript $TYPESCRIPT_VERSION, @types/node $TYPES_NODE_VERSION: present"
fi

# One line per toolchain, so a CI log shows what the runtimes will find.
for cmd in gcc g++ javac go ruby php lua5.4 sqlite3 bash perl node python3 rustc tsc; do
  if path="$(command -v "$cmd" 2>/dev/null)"; then
    case "$cmd" in
      go) v="$(go version 2>&1 | head -n1)" ;;
      lua5.4) v="$(lua5.4 -v 2>&1 | head -n1)" ;;
      javac) v="$(javac -version 2>&1 | head -n1)" ;;
      perl) v="$(perl -e 'print "perl $^V"')" ;;
      *) v="$("$cmd" --version 2>&1 | head -n1)" ;;
    esac
    printf '  %-8s %-28s %s\n' "$cmd" "$path" "$v" >&2
  else
    printf '  %-8s MISSING\n' "$cmd" >&2
  fi
done
