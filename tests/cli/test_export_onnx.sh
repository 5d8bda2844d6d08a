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
# deft's side and onnxruntime-node per architecture; the python checks (onnx.checker,
# OpenCV DNN, the comparisons) queued into $T/checks and run from one python start (onnx
# and cv2 imported once, not once per file) after the loop, or sooner once the files
# waiting pass 1 GB (bench/export_archs.sh: VGG). A line: ok message, bad message,
# export_check.py commands.
TAB=$(printf '\t')
q() { echo "$1$TAB$2$TAB$3" >>"$T/checks"; }
flush() {
    [ -s "$T/checks" ] || return 0
    $REF batch "$T/checks" >"$T/checks.out" 2>&1
    while IFS= read -r line; do
        case $line in
            "RESULT ok "*) ok "${line#RESULT ok }" ;;
            "RESULT bad "*) bad "${line#RESULT bad }" ;;
            *) printf '%s\n' "$line" ;;
        esac
    done <"$T/checks.out"
    # every queued check gave a verdict (a python that died early fails the rest)
    [ "$(grep -c '^RESULT ' "$T/checks.out")" -eq "$(wc -l <"$T/checks")" ] || bad "export_check.py batch ended early"
    rm -f "$T"/*.onnx "$T/checks"
}
for as in $ARCHS; do
    a=${as%:*} s=${as#*:}
    m=$T/$a
    $DEFT model init --arch $a --size $s --classes 7 -o $m.safetensors >/dev/null &&
    $REF perturb_bn $m.safetensors &&
    /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(5).uniform(-2, 2, (3, 3, $s, $s)).astype(np.float32))" $m.x.npy &&
    $DEFT model run -m $m.safetensors -i $m.x.npy -o $m.deft.npy >/dev/null || { bad "$a: model"; continue; }
    # logits graph: checker, onnxruntime, deft's importer
    $DEFT classification export -m $m.safetensors -o $m.onnx --logits --dynamic_batch >/dev/null &&
        q "$a: onnx.checker full_check + strict shape inference" "$a: checker" "check $m.onnx" || bad "$a: checker"
    node "$SRC/tests/ref/ort_run.js" $m.onnx $m.x.npy $m.ort.npy &&
        q "$a: onnxruntime logits" "$a: onnxruntime" "compare $m.deft.npy $m.ort.npy 1e-4" || bad "$a: onnxruntime"
    $DEFT model run -m $m.onnx -i $m.x.npy -o $m.re.npy >/dev/null &&
        q "$a: deft runs the exported ONNX" "$a: re-import" "compare $m.deft.npy $m.re.npy 1e-4" || bad "$a: re-import"
    # OpenCV DNN 4.6 reads ReLU6 only as Relu(x)-Relu(x-6) (the same file for nets without it)
    case $a in mobilenet*) $DEFT classification export -m $m.safetensors -o $m.cv.onnx --logits \
                               --relu6 relu >/dev/null ;; *) ln -f $m.onnx $m.cv.onnx ;; esac &&
        /usr/bin/python3 -c "import numpy as np, sys
for a, b in zip(sys.argv[1::2], sys.argv[2::2]): np.save(b, np.load(a)[:1])" $m.x.npy $m.x1.npy $m.deft.npy $m.deft1.npy &&
        q "$a: OpenCV DNN logits" "$a: OpenCV DNN" "opencv $m.cv.onnx $m.x1.npy $m.cv.npy ; compare $m.deft1.npy $m.cv.npy 1e-4" ||
        bad "$a: OpenCV DNN"
    rm -f $m.safetensors
    [ "$(du -sm "$T" | cut -f1)" -lt 1000 ] || flush
done
flush
# the default graph: softmax "predictions", against softmax of deft's logits
m=$T/p
$DEFT model init --arch resnet18 --size 32 --classes 4 -o $m.safetensors >/dev/null &&
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).uniform(-2, 2, (1, 3, 32, 32)).astype(np.float32))" $m.x.npy &&
$DEFT model run -m $m.safetensors -i $m.x.npy -o $m.deft.npy >/dev/null &&
$DEFT classification export -m $m.safetensors -o $m.onnx --opset 17 >/dev/null && $REF check $m.onnx &&
node "$SRC/tests/ref/ort_run.js" $m.onnx $m.x.npy $m.ort.npy &&
$REF compare $m.deft.npy $m.ort.npy 1e-5 softmax && ok "softmax 'predictions' output (opset 17)" || bad "softmax output"
finish
