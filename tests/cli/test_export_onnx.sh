#!/bin/sh
# `deft classification export` of every classification architecture deft
# builds (small inputs, random weights, random batch-norm statistics so the
# folding is exercised), checked against the peers at test time: onnx.checker
# (full check, strict shape inference), onnxruntime-node and OpenCV DNN on
# the same input as `deft model run` of the deft model (max abs diff <= 1e-4
# on logits relative to their magnitude (>= 1), identical argmax), and deft's
# own import of the exported file.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/export_check.py"
need_onnx_peers
# arch:size (the smallest input each takes): one of each family but VGG (its
# 25088x4096 classifier makes a 540 MB file: a minute of checks); EXPORT_ARCHS
# (bench/export_archs.sh) gives the whole list, VGG included
ARCHS=${EXPORT_ARCHS:-"resnet18:32 resnet50:32 mobilenet_v1:32 mobilenet_v2:32 squeezenet1_0:64
googlenet:64 efficientnet_b0:32 darknet19:32 cspdarknet53:64"}
[ -n "${DEFT_ASAN:-}" ] && ARCHS="mobilenet_v2:32"
for as in $ARCHS; do
    a=${as%:*} s=${as#*:}
    m=$T/$a
    $DEFT model init --arch $a --size $s --classes 7 -o $m.safetensors >/dev/null &&
    $REF perturb_bn $m.safetensors &&
    /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(5).uniform(-2, 2, (3, 3, $s, $s)).astype(np.float32))" $m.x.npy &&
    $DEFT model run -m $m.safetensors -i $m.x.npy -o $m.deft.npy >/dev/null || { bad "$a: model"; continue; }
    # logits graph: checker, onnxruntime, deft's importer
    $DEFT classification export -m $m.safetensors -o $m.onnx --logits --dynamic_batch >/dev/null &&
        $REF check $m.onnx && ok "$a: onnx.checker full_check + strict shape inference" || bad "$a: checker"
    node "$SRC/tests/ref/ort_run.js" $m.onnx $m.x.npy $m.ort.npy &&
        $REF compare $m.deft.npy $m.ort.npy 1e-4 && ok "$a: onnxruntime logits" || bad "$a: onnxruntime"
    $DEFT model run -m $m.onnx -i $m.x.npy -o $m.re.npy >/dev/null &&
        $REF compare $m.deft.npy $m.re.npy 1e-4 && ok "$a: deft runs the exported ONNX" || bad "$a: re-import"
    # OpenCV DNN 4.6 reads ReLU6 only as Relu(x)-Relu(x-6) (the same file for nets without it)
    case $a in mobilenet*) $DEFT classification export -m $m.safetensors -o $m.cv.onnx --logits \
                               --relu6 relu >/dev/null ;; *) cp $m.onnx $m.cv.onnx ;; esac &&
        /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:1])" $m.x.npy $m.x1.npy &&
        $REF opencv $m.cv.onnx $m.x1.npy $m.cv.npy &&
        /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:1])" $m.deft.npy $m.deft1.npy &&
        $REF compare $m.deft1.npy $m.cv.npy 1e-4 && ok "$a: OpenCV DNN logits" || bad "$a: OpenCV DNN"
    rm -f $m.*onnx $m.safetensors
done
# the default graph: softmax "predictions", against softmax of deft's logits
m=$T/p
$DEFT model init --arch resnet18 --size 32 --classes 4 -o $m.safetensors >/dev/null &&
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).uniform(-2, 2, (1, 3, 32, 32)).astype(np.float32))" $m.x.npy &&
$DEFT model run -m $m.safetensors -i $m.x.npy -o $m.deft.npy >/dev/null &&
$DEFT classification export -m $m.safetensors -o $m.onnx --opset 17 >/dev/null && $REF check $m.onnx &&
node "$SRC/tests/ref/ort_run.js" $m.onnx $m.x.npy $m.ort.npy &&
$REF compare $m.deft.npy $m.ort.npy 1e-5 softmax && ok "softmax 'predictions' output (opset 17)" || bad "softmax output"
finish
