#!/bin/sh
# ONNX conformance: the ONNX backend node tests of Debian's libonnx-testdata
# for every op deft's importer claims (tests/ref/onnx_conformance.py picks
# them and writes the cases), each imported and run by deft, and the same
# cases by onnxruntime-node. A case passes (rtol 1e-3, atol 1e-7), is refused
# (a one-line error naming what is not supported), is wrong, or crashes; any
# deft 'wrong' or 'crash' fails the test. Prints the counts of both.
# DEFT_CONF_KEEP=DIR keeps the case files and outputs in DIR.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
NODE_DIR=${ONNX_NODE_TESTS:-/usr/share/libonnx-testdata/data/node}
[ -d "$NODE_DIR" ] || { echo "SKIP: libonnx-testdata not installed (scripts/install-deps.sh --test)"; exit 77; }
/usr/bin/python3 -c "import onnx, numpy" 2>/dev/null || { echo "SKIP: python3-onnx not available"; exit 77; }
PY=$SRC/tests/ref/onnx_conformance.py
W=${DEFT_CONF_KEEP:-$T/c}
rm -rf "$W" && mkdir -p "$W"
/usr/bin/python3 "$PY" prep "$SRC/src/io" "$NODE_DIR" "$W" || { bad "preparing the cases"; finish; exit; }
# deft: import (refusals end here), then run; 3 marks a model imported that
# did not run. A signal (exit >= 128) is a crash. A model with several
# outputs runs once per output (deft_<k>.onnx: `deft model run` writes one).
# onnx_conf_runner (next to deft) does these steps with deft's own CLI code in
# one process, a fork per step, no exec of deft and its ~60 shared libraries
# (the test: 27 -> 12 CPU-s).
RUNNER=$(dirname "$DEFT")/onnx_conf_runner
if [ -x "$RUNNER" ]; then
    "$RUNNER" "$W" <"$W/cases.txt" || bad "onnx_conf_runner"
else
    while read -r c; do
        d=$W/$c
        k=0 rc=0
        while m=$d/deft_$k.onnx; [ -f "$m" ] || { [ $k -eq 0 ] && m=$d/model.onnx; }; [ -f "$m" ]; do
            $DEFT model import -i "$m" -o "$d/m.safetensors" >/dev/null 2>"$d/deft.err"
            rc=$?
            if [ $rc -eq 0 ]; then
                $DEFT model run -m "$d/m.safetensors" -i "$d/in.npy" -o "$d/deft_$k.npy" >/dev/null 2>"$d/deft.err"
                rc=$?
                [ $rc -ne 0 ] && [ $rc -lt 128 ] && rc=3
            fi
            [ $rc -ne 0 ] || [ "$m" = "$d/model.onnx" ] && break
            k=$((k + 1))
        done
        echo $rc >"$d/deft.rc"
    done <"$W/cases.txt"
fi
if command -v node >/dev/null && [ -d "${DEFT_NODE_MODULES:-$SRC/node_modules}/onnxruntime-node" ]; then
    node "$SRC/tests/ref/ort_conformance.js" "$W" || bad "onnxruntime-node runner"
else
    skip_part "onnxruntime-node not installed: its counts are not shown"
fi
/usr/bin/python3 "$PY" compare "$W" && ok "no wrong result and no crash in deft" ||
    bad "deft gave a wrong result, crashed, or refused without a clear message (lines above)"
finish
