#!/bin/sh
# ONNX conformance counts, deft next to onnxruntime-node, on the ONNX backend
# node tests (Debian's libonnx-testdata) for the ops deft imports: runs the
# conformance test and prints its per-case lines and table (~30 s).
#   sh bench/onnx_conformance.sh [BUILD_DIR]
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
DEFT_BIN=$B/deft DEFT_SOURCE_DIR=$ROOT OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} \
    sh "$ROOT/tests/cli/test_onnx_conformance.sh"
