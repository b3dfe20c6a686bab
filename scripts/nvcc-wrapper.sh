#!/usr/bin/env bash
# nvcc as scripts/build-cuda.sh hands it to cargo for candle-flash-attn's kernels (in a
# flash-attn build NVCC points at a link to this file, so every nvcc call of the build comes
# here). Two modes, by SEEDLING_NVCC_MODE:
#
#   cache      a compile (`-c -o OBJ … FILE.cu`) of a flash_*.cu is looked up in
#              SEEDLING_NVCC_CACHE first, by sha256 of nvcc's version, the arguments (all but the
#              object's path) and the source; compiled and stored on a miss. candle-flash-attn's
#              53 kernels take hours on a small machine and cudaforge keeps nothing from an
#              interrupted build, so with this a build stopped half-way resumes where it was.
#              Headers are covered by the arguments: candle-flash-attn passes a hash of its own
#              headers (-DCANDLE_FLASH_ATTN_HEADER_HASH) and CUTLASS's include path names its
#              commit.
#   stand-in   a compile of a flash_*.cu makes an empty host object instead (--check: the Rust
#              side is type-checked without the kernels; the library cannot link).
#
# Every other call (candle's own kernels, `--version`, `--lib`) goes to SEEDLING_REAL_NVCC.
#
# All of it is one function, read whole before it runs: bash reads a script as it goes, and a
# compile lasts minutes, long enough for an edit of this file to land in the middle of one.
set -euo pipefail

main() {
    local real="${SEEDLING_REAL_NVCC:?set by scripts/build-cuda.sh}"
    local out="" src="" prev="" a cache key
    local -a args=()
    for a in "$@"; do
        if [[ "$prev" == -o ]]; then
            out="$a"
        elif [[ "$a" != --threads=* ]]; then # nvcc's own parallelism: the same object either way
            args+=("$a")
        fi
        [[ "$a" == *.cu ]] && src="$a"
        prev="$a"
    done
    case "$(basename -- "$src")" in
        flash_*.cu) ;;
        *) exec "$real" "$@" ;;
    esac
    [[ -n "$out" ]] || exec "$real" "$@"

    case "${SEEDLING_NVCC_MODE:-}" in
        stand-in)
            echo 'int seedling_flash_attn_stand_in;' | gcc -x c -c -fPIC -o "$out" -
            ;;
        cache)
            cache="${SEEDLING_NVCC_CACHE:?set by scripts/build-cuda.sh}"
            key="$({
                "$real" --version
                printf '%s\n' "${args[@]}"
                cat -- "$src"
            } | sha256sum | cut -c1-64)"
            if [[ ! -f "$cache/$key.o" ]]; then
                "$real" "$@"
                mkdir -p "$cache"
                cp -- "$out" "$cache/$key.o.tmp.$$"
                mv -f -- "$cache/$key.o.tmp.$$" "$cache/$key.o"
            else
                cp -- "$cache/$key.o" "$out"
            fi
            ;;
        *)
            echo "nvcc-wrapper.sh: SEEDLING_NVCC_MODE must be cache or stand-in" >&2
            exit 2
            ;;
    esac
}

main "$@"
exit
