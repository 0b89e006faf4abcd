#!/usr/bin/env bash
# Installs what the playground's browser tests drive (crates/cli/tests/playground.rs):
# headless Chromium and its WebDriver server, from Debian's packages. Nothing when present.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  chromium --version
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
chromium --version
