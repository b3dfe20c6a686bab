#!/bin/bash
# No image may change: make a set of golden PNGs with one build, replay them with another.
#   scripts/golden.sh make  OLD_SEEDLING DIR   # 29 PNGs: 7 samplers × 3 rngs, f16, Karras +
#                                              # negative + cfg, a variation, sd2v, sdxl, a batch
#   scripts/golden.sh check NEW_SEEDLING DIR   # replay --verify each; exit 1 unless all identical
# Uses the tiny fixtures in ../shared/fixtures (or $FIXTURES); never touches the network.
set -u
mode=$1 bin=$2 dir=$3
fixtures=${FIXTURES:-$(cd "$(dirname "$0")/../../shared/fixtures" && pwd)}
export HF_HUB_OFFLINE=1

make() {
  rm -rf "$dir" && mkdir -p "$dir/count" || exit 1
  g() { "$bin" generate "$@" >/dev/null 2>&1 || { echo "failed: generate $*"; exit 1; }; }
  local m=$fixtures/tiny-sd s r
  for s in ddim euler euler_a dpmpp_2m unipc pndm lcm; do
    for r in chacha torch-cpu philox; do
      g "a lighthouse at dawn" --model "$m" --seed 721 --steps 4 --width 64 --height 64 \
        --sampler $s --rng $r -o "$dir/$s-$r.png"
    done
  done
  g "a red fox" --model "$m" --seed 5 --steps 4 --width 64 --height 64 --dtype f16 -o "$dir/f16.png"
  g "a red fox" --negative "blurry" --cfg 4 --model "$m" --seed 6 --steps 5 --width 64 --height 48 \
    --sampler dpmpp_2m --schedule karras -o "$dir/karras.png"
  g "a red fox" --model "$m" --seed 7 --variation-seed 9 --variation-strength 0.3 --steps 4 \
    --width 64 --height 64 -o "$dir/variation.png"
  g "a red fox" --model "$fixtures/tiny-sd2v" --seed 8 --steps 4 --width 64 --height 64 -o "$dir/sd2v.png"
  g "a red fox" --model "$fixtures/tiny-sdxl" --seed 9 --steps 3 --width 64 --height 64 -o "$dir/sdxl.png"
  g "a red fox" --model "$m" --seed 10 --steps 3 --width 64 --height 64 --count 3 --batch-size 2 \
    --out-dir "$dir/count"
  echo "made $(ls "$dir"/*.png "$dir"/count/*.png | wc -l) golden images in $dir"
}

check() {
  local ok=0 bad=0 p out tmp
  tmp=$(mktemp -d)
  for p in "$dir"/*.png "$dir"/count/*.png; do
    # --verify exits non-zero when an unchanged replay differs; "identical" is its verdict.
    if out=$("$bin" replay --verify "$p" --out-dir "$tmp" 2>&1) && grep -q "identical" <<<"$out"; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "DIFFERS $p: $(tail -2 <<<"$out")"; fi
  done
  rm -rf "$tmp"
  echo "identical $ok, not $bad"
  [ "$bad" -eq 0 ]
}

case $mode in
  make) make ;;
  check) check ;;
  *) echo "usage: $0 make|check SEEDLING DIR" >&2; exit 2 ;;
esac
