#!/usr/bin/env bash
# Run a seedling built by scripts/build-cuda.sh, on a machine with an NVIDIA driver.
#
#   scripts/run-cuda.sh generate "a lighthouse at dawn" --seed 721 --device cuda
#   SEEDLING_BIN=dist/cudnn/seedling scripts/run-cuda.sh ...   # another build
#
# The binary links the CUDA 13 runtime libraries (libcudart.so.13, libcublas.so.13,
# libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13, and libcudnn.so.9 for a cudnn build).
# They are hundreds of MB, so they are not shipped with it: this script looks for them, first
# match wins, in
#   1. $SEEDLING_CUDA_LIBS (colon-separated folders), if set;
#   2. the wheels scripts/build-cuda.sh installed ($CUDA_TOOLKIT_DIR/cuda/lib64);
#   3. the pip packages of the python on PATH ($PYTHON, default python3): nvidia/*/lib (the
#      wheels PyTorch depends on) and torch/lib;
# then prepends them to LD_LIBRARY_PATH and runs the binary with the given arguments. The driver
# (libcuda.so.1) comes from the system. If a library is still missing it says which, and exits 127.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SEEDLING_BIN:-$REPO/dist/cuda/seedling}"
CUDA_TARGET_DIR="${CUDA_TARGET_DIR:-$(dirname "$REPO")/target-cuda}"
CUDA_TOOLKIT_DIR="${CUDA_TOOLKIT_DIR:-$CUDA_TARGET_DIR/toolkit}"
PYTHON="${PYTHON:-python3}"

# build-cuda.sh also leaves the binary xz-compressed (seedling.xz), the form that is small enough
# to carry; python3's lzma unpacks it where the xz tool is missing.
if [[ ! -x "$BIN" && -f "$BIN.xz" ]]; then
    if command -v xz >/dev/null; then
        xz -dc "$BIN.xz" >"$BIN.tmp.$$"
    else
        "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' \
            "$BIN.xz" >"$BIN.tmp.$$"
    fi
    chmod +x "$BIN.tmp.$$"
    mv -f "$BIN.tmp.$$" "$BIN"
fi
if [[ ! -x "$BIN" ]]; then
    echo "run-cuda.sh: no seedling binary at $BIN; build one with scripts/build-cuda.sh or set SEEDLING_BIN" >&2
    exit 127
fi

# Candidate library folders, in order of preference.
dirs=()
if [[ -n "${SEEDLING_CUDA_LIBS:-}" ]]; then
    IFS=: read -r -a extra <<<"$SEEDLING_CUDA_LIBS"
    dirs+=("${extra[@]}")
fi
# Never the stubs/ folder under it: that libcuda is a link-time stand-in that reports no device.
dirs+=("$CUDA_TOOLKIT_DIR/cuda/lib64")
if command -v "$PYTHON" >/dev/null 2>&1; then
    # find_spec locates the packages without importing them (importing torch takes seconds).
    while IFS= read -r d; do dirs+=("$d"); done < <("$PYTHON" - <<'EOF' 2>/dev/null || true
import glob, importlib.util, os
for name, pattern in (("nvidia", "*/lib"), ("torch", "lib")):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        continue
    for root in (spec.submodule_search_locations or []) if spec else []:
        for d in sorted(glob.glob(os.path.join(root, pattern))):
            print(d)
EOF
    )
fi

found=()
for d in "${dirs[@]}"; do
    if [[ -d "$d" ]]; then found+=("$d"); fi
done
search="$(IFS=:; echo "${found[*]}")"
export LD_LIBRARY_PATH="${search}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ldd resolves the whole dependency tree with this LD_LIBRARY_PATH; "not found" names what is
# missing. (Without ldd, the loader's own error is all there is.)
if command -v ldd >/dev/null 2>&1; then
    missing="$(ldd "$BIN" 2>/dev/null | sed -nE 's/^[[:space:]]*([^ ]+) => not found.*/\1/p' | sort -u)"
    if [[ -n "$missing" ]]; then
        {
            echo "run-cuda.sh: $BIN needs libraries that were not found:"
            echo "$missing" | sed 's/^/  /'
            echo "searched (besides the system's):"
            for d in "${dirs[@]}"; do echo "  $d$([[ -d "$d" ]] || echo ' (absent)')"; done
            echo "  (and $PYTHON's pip packages nvidia/*/lib and torch/lib, where installed)"
            if grep -q '^libcuda\.so' <<<"$missing"; then
                echo "libcuda.so.1 is the NVIDIA driver: run this on a machine with an NVIDIA GPU and driver."
            fi
            if grep -qv '^libcuda\.so' <<<"$missing"; then
                echo "The CUDA 13 runtime libraries come from pip, e.g.:"
                echo "  $PYTHON -m pip install nvidia-cuda-runtime==13.0.* nvidia-cublas==13.0.* nvidia-curand==10.4.0.* nvidia-cuda-nvrtc==13.0.*"
                echo "  (and nvidia-cudnn-cu13==9.* for a cudnn build), or point SEEDLING_CUDA_LIBS at folders holding them."
                echo "A PyPI torch built for CUDA 12 ships libcudart.so.12 etc., which do not fit this CUDA 13 build."
            fi
        } >&2
        exit 127
    fi
fi

exec "$BIN" "$@"
