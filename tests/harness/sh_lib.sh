# sh_lib.sh - sourced by the shell tests (tests/*/test_*.sh):
#     . "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
# gives DEFT (the binary), SRC (the source tree), SHARED (../shared, or
# $DEFT_SHARED_DIR: the one way every test finds it, C tests included), a
# scratch directory T removed at exit, ok/bad to count checks, skip_part to
# say (and record for the runner's summary) that part of a test cannot run
# here, and finish to print the summary line and set the exit status.
DEFT=${DEFT_BIN:-build/deft}
SRC=${DEFT_SOURCE_DIR:-.}
SHARED=${DEFT_SHARED_DIR:-$SRC/../shared}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
skip_part() {
    echo "SKIP (part): $1"
    [ -n "${DEFT_SKIP_LOG:-}" ] && echo "$(basename "$0" .sh): $1" >>"$DEFT_SKIP_LOG"
    return 0
}
finish() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; }
# Skip (exit 77) unless the ONNX peers are installed: python3-onnx, numpy,
# OpenCV (Debian) and onnxruntime-node (npm, scripts/install-deps.sh --test).
need_onnx_peers() {
    /usr/bin/python3 -c "import onnx, numpy, cv2" 2>/dev/null ||
        { echo "SKIP: python3-onnx / numpy / opencv not available"; exit 77; }
    command -v node >/dev/null && [ -d "${DEFT_NODE_MODULES:-$SRC/node_modules}/onnxruntime-node" ] ||
        { echo "SKIP: onnxruntime-node not installed (scripts/install-deps.sh --test)"; exit 77; }
}
