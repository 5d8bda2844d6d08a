#!/bin/sh
# make fuzz T=<target> S=<seconds>: build tests/fuzz/fuzz_<target>.c with
# libFuzzer + ASan + UBSan against the whole library (clang), then run it for
# S seconds on its corpus (tests/fuzz/corpus/<target>, new inputs go to a
# scratch copy). Exit 0 when no crash, leak or timeout was found; a crash
# leaves its reproducer in build-fuzz/<target>/.
set -eu
T=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
S=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=$ROOT/tests/fuzz/fuzz_$T.c
[ -f "$SRC" ] || { echo "fuzz: no target $SRC (have: $(ls "$ROOT"/tests/fuzz/fuzz_*.c | sed 's/.*fuzz_//; s/\.c$//' | tr '\n' ' '))"; exit 2; }
OUT=$ROOT/build-fuzz/$T
mkdir -p "$OUT/corpus"
# the generated ONNX bindings come from the normal build
[ -f "$ROOT/build/gen/onnx/onnx.pb-c.c" ] || make -C "$ROOT" --no-print-directory >/dev/null
LIBSRC=$(find "$ROOT/src" -name '*.c' -not -path '*/src/cli/*')
BIN=$OUT/fuzz_$T
if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$SRC" -newer "$BIN" -name '*.[ch]' | head -1)" ]; then
    echo "fuzz: building $BIN"
    clang -std=c11 -D_GNU_SOURCE -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -O1 -g \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -w \
        -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/build/gen" $(pkg-config --cflags hdf5 libcurl) \
        $LIBSRC "$ROOT/build/gen/onnx/onnx.pb-c.c" "$SRC" -o "$BIN" \
        $(pkg-config --libs hdf5 libcurl libprotobuf-c libcjson yaml-0.1 libpng) -ljpeg -ldnnl -lm -fopenmp -lpthread
fi
[ -d "$ROOT/tests/fuzz/corpus/$T" ] && cp -n "$ROOT/tests/fuzz/corpus/$T"/* "$OUT/corpus/" 2>/dev/null || true
cd "$OUT"
echo "fuzz: running $T for ${S}s"
ASAN_OPTIONS=detect_leaks=1 "$BIN" -max_total_time="$S" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 corpus
