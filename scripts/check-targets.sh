#!/usr/bin/env bash
# `cargo clippy --all-targets -D warnings` for the platforms seedling's users run besides
# x86-64 Linux, from this machine: aarch64 Linux, Apple-silicon macOS, x86-64 Windows (GNU).
# The CPU code has x86-64-only kernels (AVX2/AVX-512) and Linux-only parts (glibc's mallopt,
# /proc memory figures) behind cfgs: this is what shows that the rest still compiles cleanly
# where those are absent. It checks; it does not link or run (no emulator here).
#
#   scripts/check-targets.sh               # all three
#   scripts/check-targets.sh aarch64-apple-darwin
#
# Needs: rustup (adds the targets' std), python3 with venv + pip and access to PyPI: C code in
# the dependencies (ring, under hf-hub's TLS) is compiled by zig's `zig cc`, from the pinned
# `ziglang` wheel, as a cross C compiler.
#
# Environment (all optional):
#   CROSS_DIR   where the zig venv, the compiler shims and the target dirs go
#               (default: ../target-cross next to the checkout)
set -euo pipefail

# One brace group, read whole before it runs (see build-cuda.sh).
{

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CROSS_DIR="${CROSS_DIR:-$(dirname "$REPO")/target-cross}"
ZIG_WHEEL=ziglang==0.17.1

# Rust target -> zig's name for the same platform.
declare -A ZIG_TARGET=(
    [aarch64-unknown-linux-gnu]=aarch64-linux-gnu
    [aarch64-apple-darwin]=aarch64-macos
    [x86_64-pc-windows-gnu]=x86_64-windows-gnu
)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${!ZIG_TARGET[@]}")

log() { echo "== $*" >&2; }

if [[ ! -x "$CROSS_DIR/zig-venv/bin/python" ]]; then
    log "zig from PyPI ($ZIG_WHEEL)"
    python3 -m venv "$CROSS_DIR/zig-venv"
    "$CROSS_DIR/zig-venv/bin/pip" install -q "$ZIG_WHEEL"
fi
ZIG_PY="$CROSS_DIR/zig-venv/bin/python"

failed=()
for target in "${targets[@]}"; do
    zig_target="${ZIG_TARGET[$target]:-}"
    if [[ -z "$zig_target" ]]; then
        echo "unknown target '$target' (known: ${!ZIG_TARGET[*]})" >&2
        exit 2
    fi
    rustup target add "$target" >/dev/null
    # cc-rs adds rustc's `--target=<triple>`, which zig does not read: the shim drops it and
    # names zig's own target.
    shims="$CROSS_DIR/shims/$target"
    mkdir -p "$shims"
    cat >"$shims/cc" <<EOF
#!/usr/bin/env bash
args=()
for a in "\$@"; do [[ "\$a" == --target=* ]] || args+=("\$a"); done
exec "$ZIG_PY" -m ziglang cc -target $zig_target "\${args[@]}"
EOF
    cat >"$shims/ar" <<EOF
#!/usr/bin/env bash
exec "$ZIG_PY" -m ziglang ar "\$@"
EOF
    chmod +x "$shims/cc" "$shims/ar"
    env_target="${target//-/_}"
    log "cargo clippy --target $target --all-targets -- -D warnings"
    if (cd "$REPO" && env "CC_$env_target=$shims/cc" "AR_$env_target=$shims/ar" \
        cargo clippy --locked --target "$target" --all-targets \
        --target-dir "$CROSS_DIR/$target" -- -D warnings); then
        log "$target: clean"
    else
        failed+=("$target")
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    log "failed: ${failed[*]}"
    exit 1
fi
log "all clean: ${targets[*]}"
exit
}
