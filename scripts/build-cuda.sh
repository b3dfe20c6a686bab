#!/usr/bin/env bash
# Build seedling with CUDA on a machine that has no CUDA toolkit and no GPU, from NVIDIA's PyPI
# wheels. Repeatable: exact wheel pins, and every step is skipped or redone cheaply on a rerun.
#
#   scripts/build-cuda.sh             # --features cuda          -> dist/cuda/seedling
#   scripts/build-cuda.sh --cudnn     # --features cudnn         -> dist/cudnn/seedling
#   scripts/build-cuda.sh --flash-attn  # --features flash-attn  -> dist/flash-attn/seedling
#   scripts/build-cuda.sh --tests     # also compile the test targets (cargo test --no-run)
#   scripts/build-cuda.sh --flash-attn --check
#                                     # cargo check + clippy of every target, no binary; for
#                                     # flash-attn with stand-in (empty) kernel objects, so the
#                                     # Rust side is checked in minutes, not hours
#
# Needs: python3 with venv + pip and access to PyPI, gcc/g++ (nvcc's host compiler), cargo,
# readelf, strip, xz. Run the result on a GPU machine with scripts/run-cuda.sh.
#
# Environment (all optional):
#   CUDA_TARGET_DIR   cargo target dir of the CUDA build (default: ../target-cuda next to the
#                     checkout, so every worktree shares one; a CUDA build is several GB)
#   CUDA_TOOLKIT_DIR  where the wheels' venv and the assembled CUDA_HOME go
#                     (default: $CUDA_TARGET_DIR/toolkit)
#   CUDA_COMPUTE_CAP  GPU architecture of the kernels (default 90 = H100; cudaforge makes it
#                     sm_90a). candle's kernels are compiled for this one architecture only.
#   DIST_DIR          output folder (default: dist/<features> in the checkout)
#   PYTHON            python used to create the venv (default python3)
#   CUTLASS_GIT       --flash-attn without GitHub access: a CUTLASS clone to take its commit from
#   CUDAFORGE_THREADS parallel nvcc jobs of the kernel builds (cudaforge's default: half the cores)
set -euo pipefail

# The rest is one brace group (not re-indented), read whole before any of it runs: bash reads a
# script as it goes, and a build lasts hours, long enough for an edit of this file in place to
# land in the middle of one and run as garbage. `exit` before the closing brace: nothing after
# it is ever read.
{

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUDA_TARGET_DIR="${CUDA_TARGET_DIR:-$(dirname "$REPO")/target-cuda}"
CUDA_TOOLKIT_DIR="${CUDA_TOOLKIT_DIR:-$CUDA_TARGET_DIR/toolkit}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
PYTHON="${PYTHON:-python3}"

# CUDA 13.0 (update 2) exactly. The GPU machine's driver is 580 = CUDA 13.0; PTX written by a
# newer nvcc (13.1+) than the driver fails to load there with CUDA_ERROR_UNSUPPORTED_PTX_VERSION.
# nvcc's own dependencies (crt headers, nvvm/cicc, cccl headers) are pinned too: left free, pip
# picks the newest 13.x cicc, which writes newer PTX.
CUDA_WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)
# cudarc 0.19.10's `cudnn` feature (what candle-core/cudnn turns on) means the cuDNN 9.21
# bindings (cudarc build.rs, SUPPORTED_CUDNN_VERSIONS / feature cudnn = ["cudnn-09021"]).
CUDNN_WHEEL=nvidia-cudnn-cu13==9.21.1.3

# --help prints the comment block above.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

FEATURES=cuda
BUILD_TESTS=0
CHECK_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cudnn) FEATURES=cudnn ;;
        --flash-attn) FEATURES=flash-attn ;;
        --tests) BUILD_TESTS=1 ;;
        --check) CHECK_ONLY=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "build-cuda.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
DIST_DIR="${DIST_DIR:-$REPO/dist/$FEATURES}"

log() { printf '\n== %s\n' "$*" >&2; }

# --- 1. the wheels, in a venv of their own --------------------------------------------------
VENV="$CUDA_TOOLKIT_DIR/venv"
WHEELS=("${CUDA_WHEELS[@]}")
# cuDNN's wheel depends on nvidia-cublas; installing both in one command keeps the cuBLAS pin.
if [[ "$FEATURES" == cudnn ]]; then WHEELS+=("$CUDNN_WHEEL"); fi
log "CUDA wheels -> $VENV"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
# With every pin already installed pip only checks them (no download).
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "${WHEELS[@]}"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# --- 2. one CUDA_HOME-like tree out of the wheels -------------------------------------------
# CUDA 13 wheels put the toolkit in nvidia/cu13/{bin,include,lib,nvvm}; cuDNN comes as
# nvidia/cudnn/{include,lib}. nvcc finds its own headers, cicc and libdevice relative to its real
# location (bin/nvcc.profile), so bin/ and nvvm/ are plain links; include/ and lib64/ merge every
# wheel's files, because cudarc's build.rs only searches $CUDA_HOME/{lib,lib64,lib64/stubs,...}.
CUDA_HOME_DIR="$CUDA_TOOLKIT_DIR/cuda"
NVCC_ROOT="$SITE/nvidia/cu13"
[[ -x "$NVCC_ROOT/bin/nvcc" ]] || { echo "no nvcc in $NVCC_ROOT/bin: did the wheel layout change?" >&2; exit 1; }
log "CUDA_HOME -> $CUDA_HOME_DIR"
# Links only (and the stub, rebuilt below), so the tree is recreated from scratch every run.
rm -rf "$CUDA_HOME_DIR/bin" "$CUDA_HOME_DIR/include" "$CUDA_HOME_DIR/lib64" "$CUDA_HOME_DIR/nvvm"
mkdir -p "$CUDA_HOME_DIR/include" "$CUDA_HOME_DIR/lib64/stubs"
ln -s "$NVCC_ROOT/bin" "$CUDA_HOME_DIR/bin"
ln -s "$NVCC_ROOT/nvvm" "$CUDA_HOME_DIR/nvvm"
shopt -s nullglob
for wheel in "$SITE"/nvidia/*/; do
    for f in "$wheel"include/*; do ln -sfn "$f" "$CUDA_HOME_DIR/include/"; done
    for f in "$wheel"lib/*.so* "$wheel"lib/*.a; do ln -sfn "$f" "$CUDA_HOME_DIR/lib64/"; done
done
# The wheels ship only versioned runtime names (libcublas.so.13); `-lcublas` needs libcublas.so.
for f in "$CUDA_HOME_DIR"/lib64/lib*.so.*; do
    base="$(basename "$f")"
    dev="${base%%.so.*}.so"
    if [[ ! -e "$CUDA_HOME_DIR/lib64/$dev" ]]; then ln -s "$base" "$CUDA_HOME_DIR/lib64/$dev"; fi
done
shopt -u nullglob

# --- 3. a link-time stand-in for the driver, libcuda.so -------------------------------------
# cudarc links the driver API directly (`-lcuda`, its dynamic-linking feature), and no wheel
# ships the driver or a stub of it. The stub defines every driver function cudarc's bindings
# declare (names read from cudarc's src/driver/sys/mod.rs of the locked version, so they follow a
# cudarc upgrade), each returning CUDA_ERROR_NO_DEVICE (100). Its soname is the real driver's,
# libcuda.so.1, so at run time the binary loads the GPU machine's driver instead.
log "libcuda stub -> $CUDA_HOME_DIR/lib64/stubs"
# The source folder of a locked dependency (cargo downloads it if needed).
crate_dir() {
    (cd "$REPO" && cargo metadata --format-version 1 --locked --features "$FEATURES") |
        "$PYTHON" -c 'import json, os, sys
pkgs = [p for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1]]
print(os.path.dirname(pkgs[0]["manifest_path"]))' "$1"
}
BINDINGS="$(crate_dir cudarc)/src/driver/sys/mod.rs"
STUB_C="$CUDA_TOOLKIT_DIR/libcuda_stub.c"
{
    echo "/* Generated by scripts/build-cuda.sh from $BINDINGS. Link-time only. */"
    grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+\(' "$BINDINGS" | sed -E 's/^pub unsafe fn (.*)\(/\1/' |
        grep -vxE 'cuGetError(Name|String)' | sort -u |
        sed -E 's/.*/int &(void) { return 100; \/* CUDA_ERROR_NO_DEVICE *\/ }/'
    # Should the stub ever be loaded at run time, errors say so instead of an opaque code.
    echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_NO_DEVICE"; return 0; }'
    echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = "no CUDA device: this libcuda.so.1 is the link-time stub from scripts/build-cuda.sh, not the NVIDIA driver"; return 0; }'
} >"$STUB_C.new"
count="$(grep -c '^int cu' "$STUB_C.new")"
[[ "$count" -gt 100 ]] || { echo "only $count driver functions found in $BINDINGS" >&2; exit 1; }
mv "$STUB_C.new" "$STUB_C"
gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$CUDA_HOME_DIR/lib64/stubs/libcuda.so" "$STUB_C"
ln -sfn libcuda.so "$CUDA_HOME_DIR/lib64/stubs/libcuda.so.1"
echo "$count driver functions in the stub" >&2

# --- flash-attn only: CUTLASS -----------------------------------------------------------------
# candle-flash-attn's build.rs has cudaforge git-clone CUTLASS (the commit in its CUTLASS_COMMIT)
# from GitHub into ${CUDAFORGE_HOME:-~/.cudaforge}/git/checkouts/cutlass-<16 hex>/, and uses a
# checkout it finds there at that commit. Where GitHub cannot be reached, CUTLASS_GIT=<path or URL
# of a CUTLASS clone holding that commit> fills the cache first. The 53 kernels take 12-17 min
# each for one nvcc job on a small machine (hours in all; CUDAFORGE_THREADS sets the jobs). Their
# objects go to a folder of their own (CANDLE_FLASH_ATTN_BUILD_DIR) so that a finished build
# survives a rebuild of the build script. cudaforge records the objects only once all are
# compiled, so scripts/nvcc-wrapper.sh keeps each one as it is made (SEEDLING_NVCC_CACHE): an
# interrupted build, run again, compiles only the kernels it had not finished.
if [[ "$FEATURES" == flash-attn ]]; then
    if [[ -n "${CUTLASS_GIT:-}" ]]; then
        commit="$(sed -nE 's/^const CUTLASS_COMMIT: &str = "([0-9a-f]{40})";/\1/p' "$(crate_dir candle-flash-attn)/build.rs")"
        [[ -n "$commit" ]] || { echo "no CUTLASS_COMMIT in candle-flash-attn's build.rs" >&2; exit 1; }
        dest="${CUDAFORGE_HOME:-$HOME/.cudaforge}/git/checkouts/cutlass-${commit:0:16}"
        if [[ "$(git -C "$dest" rev-parse HEAD 2>/dev/null || true)" != "$commit" ]]; then
            log "CUTLASS $commit from $CUTLASS_GIT -> $dest"
            rm -rf "$dest"
            git clone -q --no-checkout "$CUTLASS_GIT" "$dest"
            git -C "$dest" sparse-checkout set include tools/util/include
            git -C "$dest" checkout -q "$commit"
        fi
    fi
    export CANDLE_FLASH_ATTN_BUILD_DIR="${CANDLE_FLASH_ATTN_BUILD_DIR:-$CUDA_TARGET_DIR/flash-attn-kernels}"
    # nvcc goes through scripts/nvcc-wrapper.sh (its comment says why): a link named nvcc in a
    # folder beside include/, since cudaforge takes the headers from next to nvcc.
    WRAP="$CUDA_TOOLKIT_DIR/nvcc-wrapper"
    mkdir -p "$WRAP/bin"
    ln -sfn "$CUDA_HOME_DIR/include" "$WRAP/include"
    ln -sfn "$REPO/scripts/nvcc-wrapper.sh" "$WRAP/bin/nvcc"
    export NVCC="$WRAP/bin/nvcc" SEEDLING_REAL_NVCC="$CUDA_HOME_DIR/bin/nvcc"
    if [[ "$CHECK_ONLY" == 1 ]]; then
        # Stand-in objects make a library that cannot link: a folder of its own, so that a
        # real build never finds them.
        export SEEDLING_NVCC_MODE=stand-in
        export CANDLE_FLASH_ATTN_BUILD_DIR="$CUDA_TARGET_DIR/flash-attn-stand-in"
    else
        export SEEDLING_NVCC_MODE=cache
        export SEEDLING_NVCC_CACHE="${SEEDLING_NVCC_CACHE:-$CUDA_TARGET_DIR/flash-attn-objects}"
    fi
    mkdir -p "$CANDLE_FLASH_ATTN_BUILD_DIR"
fi

# --- 4. cargo build -------------------------------------------------------------------------
# cudarc reads CUDA_HOME and runs `nvcc --version` from PATH (its cuda-version-from-build-system
# feature); candle-kernels' build.rs (cudaforge) finds nvcc on PATH and takes the architecture
# from CUDA_COMPUTE_CAP, since there is no nvidia-smi here.
export CUDA_HOME="$CUDA_HOME_DIR"
export PATH="$CUDA_HOME_DIR/bin:$PATH"
export CARGO_TARGET_DIR="$CUDA_TARGET_DIR"
unset CUDA_PATH CUDA_ROOT CUDA_TOOLKIT_ROOT_DIR CUDNN_LIB
# Cargo takes seedling's own targets as up to date when no source file is newer than their last
# build, and this target dir is shared by every checkout: a build from another checkout whose
# files are older than the last one's build kept that build's binary (seen here: a flash-attn
# binary of the other checkout's commit under a MANIFEST naming this one). So when the last
# build here came from another checkout, this one's sources are touched (newer than any build),
# which rebuilds seedling's targets and none of its dependencies.
stamp="$CUDA_TARGET_DIR/last-checkout"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$REPO" ]]; then
    log "last build in $CUDA_TARGET_DIR was from another checkout: seedling's targets rebuilt"
    find "$REPO/src" "$REPO/tests" "$REPO/examples" "$REPO/benches" -name '*.rs' \
        -exec touch {} + 2>/dev/null || true
    echo "$REPO" >"$stamp"
fi
if [[ "$CHECK_ONLY" == 1 ]]; then
    log "cargo check + clippy --all-targets --features $FEATURES (target dir $CARGO_TARGET_DIR, no binary)"
    (cd "$REPO" && cargo check --locked --all-targets --features "$FEATURES" &&
        cargo clippy --locked --all-targets --features "$FEATURES" -- -D warnings)
    log "done: --features $FEATURES checks (no binary made)"
    exit 0
fi
log "cargo build --release --features $FEATURES (target dir $CARGO_TARGET_DIR, sm_${CUDA_COMPUTE_CAP})"
start=$SECONDS
(cd "$REPO" && cargo build --locked --release --features "$FEATURES")
build_s=$((SECONDS - start))
if [[ "$BUILD_TESTS" == 1 ]]; then
    log "cargo test --no-run --features $FEATURES"
    (cd "$REPO" && cargo test --locked --release --features "$FEATURES" --no-run)
fi

# --- 5. the binary and its manifest ---------------------------------------------------------
# The symbol table goes (62 -> 58 MiB; most of the rest is the sm_90 kernels' fatbin); the
# unstripped binary stays in $CARGO_TARGET_DIR/release. seedling.xz is the same binary for
# carrying to a GPU machine under a size limit (the device tool carries 64 MiB in all);
# scripts/run-cuda.sh unpacks it when needed. xz, not gzip: flash-attn's 53 kernels make a
# 314 MB binary, 79 MB gzipped (-6), 25 MB with xz -9.
mkdir -p "$DIST_DIR"
strip -o "$DIST_DIR/seedling.new" "$CARGO_TARGET_DIR/release/seedling"
mv -f "$DIST_DIR/seedling.new" "$DIST_DIR/seedling"
rm -f "$DIST_DIR/seedling.gz" # an older build's carry form: left here, it would be another binary
xz -9 -T0 -c "$DIST_DIR/seedling" >"$DIST_DIR/seedling.xz.new"
mv -f "$DIST_DIR/seedling.xz.new" "$DIST_DIR/seedling.xz"
BIN="$DIST_DIR/seedling"
needed="$(readelf -d "$BIN" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')"
glibc="$(readelf -W --dyn-syms "$BIN" | grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -1)"
{
    echo "seedling CUDA build"
    echo "source:        $(cd "$REPO" && git rev-parse HEAD)$(cd "$REPO" && git diff --quiet HEAD || echo ' (+ uncommitted changes)')"
    echo "features:      $FEATURES"
    echo "compute cap:   $CUDA_COMPUTE_CAP (candle-kernels PTX and libmoe.a are for this architecture only)"
    echo "nvcc:          $("$CUDA_HOME_DIR/bin/nvcc" --version | grep release)"
    echo "rustc:         $(rustc --version)"
    echo "built:         $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), ${build_s}s"
    echo "needs glibc:   >= ${glibc#GLIBC_}"
    echo "sha256:        $(sha256sum "$BIN" | cut -d' ' -f1) (stripped)"
    echo "size:          $(stat -c %s "$BIN") bytes (seedling.xz: $(stat -c %s "$BIN.xz"))"
    echo
    echo "wheels (pinned; pip installed exactly these):"
    printf '  %s\n' "${WHEELS[@]}"
    echo
    echo "NEEDED (readelf -d): the GPU machine must provide the CUDA ones (scripts/run-cuda.sh)"
    echo "$needed" | sed 's/^/  /'
} >"$DIST_DIR/MANIFEST.txt"
log "done: $DIST_DIR/seedling (${build_s}s build)"
cat "$DIST_DIR/MANIFEST.txt" >&2
exit
}
