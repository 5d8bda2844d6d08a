#!/bin/sh
# Time of the detection metrics behind `deft detection score` / `evaluate`
# on 10,000 predictions over 500 images (goal: well under a second), every
# definition (VOC 11/all-point, TAO SAMPLE/INTEGRATE, COCO), metrics.json
# included. Compiles bench/det_score_bench.c against the build's libdeft.so.
#     bench/det_score_bench.sh [build] [images] [predictions] [classes]
set -e
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
make -C "$BUILD" deft_shared >/dev/null
BIN=$(mktemp)
trap 'rm -f "$BIN"' EXIT
cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$ROOT/include" "$ROOT/bench/det_score_bench.c" \
   -L"$BUILD" -ldeft -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lm -o "$BIN"
"$BIN" "${2:-500}" "${3:-10000}" "${4:-3}"
