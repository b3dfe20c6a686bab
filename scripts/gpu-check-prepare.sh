#!/usr/bin/env bash
# Prepares, on this (CPU) machine, what scripts/gpu-check.sh needs on the GPU machine, which
# has PyTorch, transformers and CUDA but no network and no diffusers:
#   carry/gpu-check/whl       diffusers 0.42.1 and importlib_metadata wheels (pure Python)
#   carry/gpu-check/tiny-sd   a copy of ../shared/fixtures/tiny-sd (../shared does not travel)
# and checks that scripts/build-cuda.sh left the binary (dist/cuda/seedling.xz, or another
# build's with SEEDLING_DIST). carry/ and dist/ are git-ignored; name both paths printed at the
# end in the device run's `carry`.
#
#   scripts/gpu-check-prepare.sh
#   SEEDLING_DIST=dist/flash-attn scripts/gpu-check-prepare.sh   # the flash-attn build's
#
# Needs python3 with pip and access to PyPI. Rerunning replaces the folder.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO/carry/gpu-check"
TINY="${TINY_SD:-$REPO/../shared/fixtures/tiny-sd}"
PYTHON="${PYTHON:-python3}"
DIST="${SEEDLING_DIST:-dist/cuda}"

if [[ ! -f "$REPO/$DIST/seedling.xz" ]]; then
    echo "gpu-check-prepare.sh: no $DIST/seedling.xz; build it first with scripts/build-cuda.sh" >&2
    exit 1
fi
if [[ ! -d "$TINY/unet" ]]; then
    echo "gpu-check-prepare.sh: no tiny-sd at $TINY; set TINY_SD to a copy of shared/fixtures/tiny-sd" >&2
    exit 1
fi
rm -rf "$DEST.partial"
mkdir -p "$DEST.partial/whl"
# diffusers' other requirements (huggingface-hub ≥ 1.32, safetensors ≥ 0.8, numpy, regex,
# requests, filelock, Pillow) are in the GPU machine's image (.library/device/KINDS.md).
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$DEST.partial/whl" \
    diffusers==0.42.1 importlib_metadata==8.7.0
cp -r "$TINY" "$DEST.partial/tiny-sd"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
du -sh "$DEST" "$REPO/$DIST/seedling.xz" >&2
echo "carry: [\"$DIST/seedling.xz\", \"carry/gpu-check\"]; command: SEEDLING_BIN=$DIST/seedling bash scripts/gpu-check.sh" >&2
