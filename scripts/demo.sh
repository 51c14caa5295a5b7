#!/usr/bin/env bash
# The main job on a built-in default: build a sample image into an OCI layout, copy it to dir: and
# back, then copy it again and see that nothing moves.
set -euo pipefail
cd "$(dirname "$0")/.."
IMG_SKIP_APT=1 bash scripts/setup.sh
TURBO_TELEMETRY_DISABLED=1 pnpm exec turbo run build --output-logs=errors-only >/dev/null
exec node scripts/demo.mjs "$@"
