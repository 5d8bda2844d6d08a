#!/bin/sh
# Run the ctest suite of a build directory and end with one summary line:
# "N passed, N failed, N skipped".
BUILD=${1:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
LOG=$(mktemp)
ctest --test-dir "$BUILD" --output-on-failure ${CTEST_ARGS:-} 2>&1 | tee "$LOG"
rc=$?
passed=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed" "$LOG")
failed=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run| Failed)" "$LOG")
skipped=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*Skipped" "$LOG")
rm -f "$LOG"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
