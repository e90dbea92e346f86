#!/usr/bin/env bash
# GPU benchmark of the gpu and paper profiles (about 8 minutes at most).
# Usage: bash benchmarks/gpu.sh [--compile]         one GPU
#        bash benchmarks/gpu.sh --nproc N           also N data-parallel processes (torchrun, NCCL)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
NPROC=1
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc) NPROC="$2"; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
timeout 480 "$PY" benchmarks/gpu.py "${ARGS[@]}"
if [ "$NPROC" -gt 1 ]; then
  for n in 1 "$NPROC"; do
    timeout 300 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$n" \
      benchmarks/ddp.py --profile gpu --steps 40
  done
fi
