#!/bin/sh
# Run the ctest suite of a build directory and end with one summary line:
# "N passed (K of them partly skipped), N failed, N skipped". A test that
# cannot run some of its checks here (a peer or ../shared missing) records
# why in $DEFT_SKIP_LOG (test_skip_part / skip_part); the reasons are listed
# above the summary line.
BUILD=${1:-build}
DEFT_SKIP_LOG=$(mktemp)
export DEFT_SKIP_LOG
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
LOG=$(mktemp)
# two tests at a time: most are single-threaded scripts waiting on a child
# (DEFT_TEST_JOBS=1 runs them one by one)
ctest --test-dir "$BUILD" --output-on-failure -j"${DEFT_TEST_JOBS:-2}" ${CTEST_ARGS:-} 2>&1 | tee "$LOG"
rc=$?
passed=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed" "$LOG")
failed=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run| Failed)" "$LOG")
skipped=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*Skipped" "$LOG")
rm -f "$LOG"
partial=$(cut -d: -f1 "$DEFT_SKIP_LOG" | sort -u | wc -l)
if [ "$partial" -gt 0 ]; then
    echo "partly skipped:"
    sort -u "$DEFT_SKIP_LOG" | sed 's/^/  /'
fi
rm -f "$DEFT_SKIP_LOG"
echo "$passed passed ($partial of them partly skipped), $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
