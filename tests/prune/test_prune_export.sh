#!/bin/sh
# A pruned model exports to ONNX and runs in the peers: resnet18 (residual
# adds tie channels), squeezenet1_0 (fire modules concatenate) and
# mobilenet_v2 (depthwise layers follow their producer) pruned to half their
# parameters, exported, checked by onnx.checker, run in onnxruntime-node and
# OpenCV DNN against `deft model run` of the pruned model (max abs diff <= 1e-4
# on logits, identical argmax); the ONNX carries the pruned channel counts.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/export_check.py"
need_onnx_peers
ARCHS="resnet18:32 squeezenet1_0:64 mobilenet_v2:32"
[ -n "${DEFT_ASAN:-}" ] && ARCHS="squeezenet1_0:64"
for as in $ARCHS; do
    a=${as%:*} s=${as#*:}
    m=$T/$a
    $DEFT model init --arch $a --size $s --classes 5 -o $m.full.safetensors >/dev/null &&
    $REF perturb_bn $m.full.safetensors &&
    $DEFT classification prune -m $m.full.safetensors -o $m.safetensors -r $T/$a.r \
        --target_ratio 0.5 -nf 8 >$m.plog 2>&1 || { bad "$a: prune"; cat $m.plog; continue; }
    ratio=$(sed -n 's/.*Pruning ratio (pruned model \/ original model): //p' $m.plog)
    /usr/bin/python3 -c "import sys; sys.exit(not 0.45 <= float(sys.argv[1]) <= 0.55)" "$ratio" &&
        ok "$a: pruned to $ratio of the parameters" || bad "$a: ratio $ratio"
    /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(5).uniform(-2, 2, (3, 3, $s, $s)).astype(np.float32))" $m.x.npy &&
    $DEFT model run -m $m.safetensors -i $m.x.npy -o $m.deft.npy >/dev/null || { bad "$a: run"; continue; }
    $DEFT classification export -m $m.safetensors -o $m.onnx --logits --dynamic_batch >/dev/null &&
        $REF check $m.onnx && ok "$a: pruned export passes onnx.checker" || { bad "$a: export"; continue; }
    # every conv/linear weight of the ONNX has the pruned model's shape
    $DEFT model info -m $m.safetensors >$m.info 2>&1 &&
    /usr/bin/python3 - $m.onnx $m.safetensors <<'PY' && ok "$a: ONNX initializers keep the pruned shapes" || bad "$a: shapes"
import sys, json, struct, onnx
m = onnx.load(sys.argv[1])
onx = {i.name: list(i.dims) for i in m.graph.initializer}
raw = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
ws = {k: v["shape"] for k, v in hdr.items() if k != "__metadata__" and k.endswith(".weight") and len(v["shape"]) in (2, 4)}
assert ws, "no weights"
for k, shape in ws.items():
    if k in onx:
        assert onx[k] == shape, (k, onx[k], shape)
total_onnx = sum(1 for k in ws if k in onx)
assert total_onnx >= len(ws) // 2, (total_onnx, len(ws))
PY
    node "$SRC/tests/ref/ort_run.js" $m.onnx $m.x.npy $m.ort.npy &&
        $REF compare $m.deft.npy $m.ort.npy 1e-4 && ok "$a: onnxruntime logits of the pruned model" ||
        bad "$a: onnxruntime"
    case $a in mobilenet*) $DEFT classification export -m $m.safetensors -o $m.cv.onnx --logits \
                               --relu6 relu >/dev/null ;; *) cp $m.onnx $m.cv.onnx ;; esac &&
        /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:1])" $m.x.npy $m.x1.npy &&
        $REF opencv $m.cv.onnx $m.x1.npy $m.cv.npy &&
        /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:1])" $m.deft.npy $m.deft1.npy &&
        $REF compare $m.deft1.npy $m.cv.npy 1e-4 && ok "$a: OpenCV DNN logits of the pruned model" ||
        bad "$a: OpenCV DNN"
    rm -f $m.*onnx $m.*safetensors
done
finish
