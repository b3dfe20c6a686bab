#!/usr/bin/env bash
# The CUDA checks of issue 5 in one command, on the GPU machine (bench/gpu_check.py says what
# they are): CUDA replays pixel-identical, CUDA vs CPU PSNR, f16 seconds per image next to
# PyTorch. Prepared by scripts/build-cuda.sh and scripts/gpu-check-prepare.sh; from the device
# tool, with carry ["dist/cuda/seedling.xz", "carry/gpu-check"]:
#
#   bash scripts/gpu-check.sh                 # results in $OUT (or /tmp/seedling-gpu-check-out)
#   bash scripts/gpu-check.sh --skip speed-sd15   # any bench/gpu_check.py options
#   SEEDLING_BIN=dist/flash-attn/seedling bash scripts/gpu-check.sh
#                                  # another build, carrying its seedling.xz instead
#                                  # (SEEDLING_DIST=dist/flash-attn scripts/gpu-check-prepare.sh)
#
# Writes gpu-check.json, gpu-check.txt and gpu-check.log; exits non-zero if a check failed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/seedling-gpu-check-out}"
KIT="$REPO/carry/gpu-check"
mkdir -p "$OUT"
if [[ ! -d "$KIT/whl" ]]; then
    echo "gpu-check.sh: no $KIT; run scripts/gpu-check-prepare.sh here and carry carry/gpu-check" >&2
    exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-check-site "$KIT"/whl/*.whl || exit 2
export PYTHONPATH="/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 "$REPO/bench/gpu_check.py" --out "$OUT" --tiny "$KIT/tiny-sd" "$@" 2>&1 |
    tee "$OUT/gpu-check.log"
exit "${PIPESTATUS[0]}"
