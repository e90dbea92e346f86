#!/usr/bin/env bash
# GPU benchmark of the gpu and paper profiles (about 8 minutes at most). Usage: bash benchmarks/gpu.sh [--compile]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec timeout 480 "$PY" benchmarks/gpu.py "$@"
