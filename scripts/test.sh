#!/usr/bin/env bash
# Run the test suite (sets up ./.venv first if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh
exec python -m pytest -q "$@"
