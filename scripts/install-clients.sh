#!/usr/bin/env bash
# Installs the real client libraries the compatibility tests drive (issue 12), pinned, into
# .clients/ at the repository root (git-ignored): a Python venv with the official Judge0 SDK,
# and npm packages for the Piston client and the official MCP SDK. Idempotent: a second run
# only checks what is there. The tests (crates/cli/tests/compat*.rs) look for them there, or
# under $LIVEXEC_CLIENTS_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${LIVEXEC_CLIENTS_DIR:-$ROOT/.clients}"

JUDGE0_VERSION=0.0.8
PISTON_CLIENT_VERSION=1.0.2
MCP_SDK_VERSION=1.32.2

mkdir -p "$DIR"

if ! "$DIR/venv/bin/python" -c "import judge0, sys; sys.exit(0 if judge0.__version__ == '$JUDGE0_VERSION' else 1)" 2>/dev/null; then
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check "judge0==$JUDGE0_VERSION"
fi

mkdir -p "$DIR/npm"
if [ ! -f "$DIR/npm/node_modules/piston-client/package.json" ] \
    || [ ! -f "$DIR/npm/node_modules/@modelcontextprotocol/sdk/package.json" ] \
    || ! grep -q "\"version\": \"$MCP_SDK_VERSION\"" "$DIR/npm/node_modules/@modelcontextprotocol/sdk/package.json"; then
    (cd "$DIR/npm" \
        && { [ -f package.json ] || echo '{"name":"livexec-compat-clients","private":true}' > package.json; } \
        && npm install --silent --no-audit --no-fund --save-exact \
            "piston-client@$PISTON_CLIENT_VERSION" "@modelcontextprotocol/sdk@$MCP_SDK_VERSION")
fi

echo "clients ready in $DIR: judge0 $JUDGE0_VERSION, piston-client $PISTON_CLIENT_VERSION, @modelcontextprotocol/sdk $MCP_SDK_VERSION"
