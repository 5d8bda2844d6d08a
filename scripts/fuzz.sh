#!/bin/sh
# make fuzz T=<target> S=<seconds>: build tests/fuzz/fuzz_<target>.c with
# libFuzzer + ASan + UBSan (clang; the library is instrumented once, in
# build-fuzz/), then run it for S seconds on its corpus
# (tests/fuzz/corpus/<target>; new inputs go to build-fuzz/<target>/corpus).
# Exit 0 when no crash, leak or timeout was found; a crash leaves its
# reproducer in build-fuzz/<target>/ (copy it to tests/fuzz/regress/<target>/
# once fixed: the ctest fuzz_replay_<target> replays it from then on).
#   T=all: every target for S seconds each (CI: `make fuzz T=all S=15`).
#   RUNS=N: N inputs with a fixed seed instead of S seconds: a reproducible
#           run (CI uses this, so a run that passed once passes again).
#   MERGE=1: afterwards merge the new inputs into the committed corpus
#            (libFuzzer -merge=1 keeps only inputs that add coverage).
set -eu
T=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}
S=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-fuzz
targets() { ls "$ROOT"/tests/fuzz/fuzz_*.c | sed 's/.*fuzz_//; s/\.c$//'; }
if [ "$T" = all ]; then
    rc=0
    for t in $(targets); do "$0" "$t" "$S" || rc=1; done
    exit $rc
fi
[ -f "$ROOT/tests/fuzz/fuzz_$T.c" ] || { echo "fuzz: no target tests/fuzz/fuzz_$T.c (have: $(targets | tr '\n' ' '))"; exit 2; }
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)"; exit 2; }
[ -f "$BUILD/Makefile" ] || CC=clang cmake -S "$ROOT" -B "$BUILD" -DDEFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
make --no-print-directory -C "$BUILD" -j"$(nproc)" "fuzz_$T" >/dev/null
OUT=$BUILD/$T
mkdir -p "$OUT/corpus"
SEEDS=$ROOT/tests/fuzz/corpus/$T
[ -d "$SEEDS" ] && cp -n "$SEEDS"/* "$OUT/corpus/" 2>/dev/null || true
cd "$OUT"
# the Keras reader runs libhdf5 in a child process (src/io/sandbox.c) with a
# time limit: 1 s here, so a forged file costs 1 s, not libFuzzer's timeout.
# The child's ASan reports go to child/; libhdf5's own bugs are contained
# there by design, but one whose first frame is deft's code fails the run.
# Each input forks a child, and forged files spin until the limit: a
# reproducible run (RUNS) of this target is capped at 2000 inputs.
SANDBOX=; rm -rf "$OUT/child"
if [ "$T" = keras_h5 ]; then
    mkdir -p "$OUT/child"
    SANDBOX="DEFT_SANDBOX_SECONDS=1 DEFT_SANDBOX_REPORTS=$OUT/child/report"
    [ -n "${RUNS:-}" ] && [ "$RUNS" -gt 2000 ] && RUNS=2000
fi
if [ -n "${RUNS:-}" ]; then LIMIT="-runs=$RUNS -seed=1"; echo "fuzz: running $T for $RUNS inputs"
else LIMIT="-max_total_time=$S"; echo "fuzz: running $T for ${S}s"; fi
env $SANDBOX ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 OMP_NUM_THREADS=1 "$BUILD/fuzz_$T" $LIMIT -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 corpus 2>&1 | tee "$OUT/last.log" |
    grep -E "^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)" || true
grep -q "Done [0-9]* runs\|DONE" "$OUT/last.log" || { echo "fuzz: $T FAILED (see $OUT/last.log)"; exit 1; }
if [ -d "$OUT/child" ]; then
    nrep=$(ls "$OUT/child" | wc -l)
    ours=$(for r in "$OUT"/child/report.*; do [ -f "$r" ] || continue
        awk '/^ *#[0-9]+ / && !/__interceptor_|__asan|__sanitizer|in (strdup|strlen|memcpy|memmove|memset) / { print FILENAME ": " $0; exit }' "$r"
    done | grep "$ROOT/src/" || true)
    echo "fuzz: $T: $nrep crashes inside libhdf5, contained in the child process (reports in $OUT/child)"
    [ -z "$ours" ] || { echo "fuzz: $T FAILED: a child crash in deft's code:"; echo "$ours" | head -5; exit 1; }
fi
echo "fuzz: $T coverage: $(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[a-zA-Z]*' "$OUT/last.log" | tail -1)"
if [ "${MERGE:-0}" = 1 ]; then
    mkdir -p "$SEEDS"
    "$BUILD/fuzz_$T" -merge=1 -max_len=65536 "$SEEDS" "$OUT/corpus" >/dev/null 2>&1
    echo "fuzz: $T corpus now $(ls "$SEEDS" | wc -l) files, $(du -sk "$SEEDS" | cut -f1) KiB"
fi
echo "fuzz: $T ok"
