#!/bin/sh
# Every ONNX op deft converts, checked against onnxruntime-node: the small
# models of tests/fuzz/make_onnx_seeds.py (written here by python3-onnx) run
# in both on the same random input; max abs diff <= 1e-4. The QDQ seeds
# (qdq_*) are int8 graphs: deft imports them as float graphs plus ranges, so
# they are compared with onnxruntime as int8 engines (test_engine_int8).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
/usr/bin/python3 -c "import onnx, numpy" 2>/dev/null || { echo "SKIP: python3-onnx not available"; exit 77; }
command -v node >/dev/null && [ -d "${DEFT_NODE_MODULES:-$SRC/node_modules}/onnxruntime-node" ] ||
    { echo "SKIP: onnxruntime-node not installed (scripts/install-deps.sh --test)"; exit 77; }
/usr/bin/python3 "$SRC/tests/fuzz/make_onnx_seeds.py" "$T/m" >/dev/null || { echo "FAIL: seeds"; exit 1; }
for f in "$T"/m/*.onnx; do
    n=$(basename "$f" .onnx)
    case $n in qdq_*) continue ;; esac
    /usr/bin/python3 -c "
import onnx, numpy as np, sys
m = onnx.load(sys.argv[1])
shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
np.save(sys.argv[2], np.random.default_rng(3).standard_normal(shape).astype(np.float32))" "$f" "$T/$n.x.npy" &&
    node "$SRC/tests/ref/ort_run.js" "$f" "$T/$n.x.npy" "$T/$n.ref.npy" &&
    $DEFT model import -i "$f" -o "$T/$n.safetensors" >/dev/null &&
    $DEFT model run -m "$T/$n.safetensors" -i "$T/$n.x.npy" -o "$T/$n.y.npy" >/dev/null &&
    /usr/bin/python3 -c "
import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
d = float(np.abs(a.reshape(b.shape) - b).max()) if a.size == b.size else float('inf')
print('  %s: output %s, max abs diff %.3g' % (sys.argv[3], list(b.shape), d))
sys.exit(0 if d <= 1e-4 else 1)" "$T/$n.y.npy" "$T/$n.ref.npy" "$n" && ok "$n vs onnxruntime" || bad "$n vs onnxruntime"
done
finish
