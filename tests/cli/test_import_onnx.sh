#!/bin/sh
# `deft model import` of ONNX files, whole graph into deft's IR, checked
# against the peers: the ImageNet SqueezeNet 1.0 .onnx of ../shared/models
# against torchvision with the same weights' .pth, cifar10_resnet20.onnx
# (32x32) against OpenCV DNN, torchvision architectures with random weights
# exported by torch.onnx here against PyTorch; then bad input: an
# unsupported op and a truncated file exit 2 naming the op / file.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/torchvision_import.py"
/usr/bin/python3 -c "import torch, torchvision, onnx, PIL" 2>/dev/null ||
    { echo "SKIP: python3 torch/torchvision/onnx not available"; exit 77; }
M=$SHARED/models
IMGS=$SHARED/data/sample_images
SQ=$M/squeezenet1_0_imagenet_deepcompression/squeezenet1_0_imagenet
if [ -f "$SQ.onnx" ] && [ -d "$IMGS" ]; then
    $REF prep "$IMGS" "$T/x.npy" + squeezenet "$SQ.pth" "$T/x.npy" "$T/ref.npy" >/dev/null &&
    $DEFT model import -i "$SQ.onnx" -o "$T/sq.safetensors" >/dev/null &&
    $DEFT model run -m "$T/sq.safetensors" -i "$T/x.npy" -o "$T/y.npy" >/dev/null &&
    $REF compare "$T/y.npy" "$T/ref.npy" 1e-3 && ok "squeezenet1_0 ImageNet .onnx vs torchvision" ||
        bad "squeezenet1_0 ImageNet .onnx vs torchvision"
    R20=$M/cifar10_resnet20/cifar10_resnet20.onnx
    if /usr/bin/python3 -c "import cv2" 2>/dev/null; then
        $REF cifar_prep "$IMGS" "$T/x32.npy" &&
        $REF opencv "$R20" "$T/x32.npy" "$T/ref32.npy" &&
        $DEFT model import -i "$R20" -o "$T/r20.safetensors" >/dev/null &&
        $DEFT model run -m "$T/r20.safetensors" -i "$T/x32.npy" -o "$T/y32.npy" >/dev/null &&
        $REF compare "$T/y32.npy" "$T/ref32.npy" 1e-3 && ok "cifar10_resnet20 .onnx (32x32) vs OpenCV DNN" ||
            bad "cifar10_resnet20 .onnx (32x32) vs OpenCV DNN"
        # a later action uses what the import recorded (preprocessing, class names)
        $DEFT model import -i "$R20" -o "$T/r20n.safetensors" \
            --class_names airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck >/dev/null &&
        $DEFT classification inference -m "$T/r20n.safetensors" -i "$IMGS" -o "$T/r20.csv" >/dev/null 2>&1 &&
        grep -q "chelsea.png,cat," "$T/r20.csv" && grep -q "eagle.jpg,bird," "$T/r20.csv" &&
            ok "classification inference with the imported cifar10_resnet20: chelsea cat, eagle bird" ||
            { bad "classification inference with the imported ONNX"; cat "$T/r20.csv"; }
        # the .onnx itself is a model for `deft model run` (and every action that loads one)
        $DEFT model run -m "$R20" -i "$T/x32.npy" -o "$T/z32.npy" >/dev/null &&
        $REF compare "$T/z32.npy" "$T/ref32.npy" 1e-3 && ok "deft model run -m cifar10_resnet20.onnx directly" ||
            bad "deft model run -m cifar10_resnet20.onnx directly"
    else
        skip_part "cifar10_resnet20: python3-opencv not available"
    fi
else
    skip_part "squeezenet/cifar10_resnet20: ../shared not present"
fi
ARCHS="resnet18 mobilenet_v2 googlenet efficientnet_b0"
[ -n "${DEFT_ASAN:-}" ] && ARCHS="mobilenet_v2" # make asan looks for memory errors, not numbers
# every architecture's torch.onnx export, input and logits from one python start
$REF random_onnx "$(echo $ARCHS | tr ' ' ,)" "$T" 2>/dev/null || bad "torch.onnx exports ($ARCHS)"
for a in $ARCHS; do
    [ -f "$T/${a}_ref.npy" ] &&
    $DEFT model import -i "$T/$a.onnx" -o "$T/$a.safetensors" >/dev/null &&
    $DEFT model run -m "$T/$a.safetensors" -i "$T/${a}_in.npy" -o "$T/${a}_y.npy" >/dev/null &&
    $REF compare "$T/${a}_y.npy" "$T/${a}_ref.npy" 1e-3 && ok "$a exported by torch.onnx" ||
        bad "$a exported by torch.onnx"
    rm -f "$T/$a.onnx" "$T/$a.safetensors"
done
# an op deft does not convert: exit 2 naming the op and the node
$REF unsupported "$T/erf.onnx"
$DEFT model import -i "$T/erf.onnx" -o "$T/erf.safetensors" 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 2 ] && grep -q "'Hardmax'" "$T/err" && grep -q "/act/Hardmax" "$T/err" &&
    ok "unsupported op: exit 2 naming the op" || { bad "unsupported op (exit $rc)"; cat "$T/err"; }
[ -e "$T/erf.safetensors" ] && bad "a failed import left an output file"
# a truncated ONNX file: exit 2 naming the file
if [ -f "$SQ.onnx" ]; then
    head -c 300000 "$SQ.onnx" >"$T/trunc.onnx"
    $DEFT model import -i "$T/trunc.onnx" -o "$T/tr.safetensors" 2>"$T/err" >/dev/null
    rc=$?
    [ $rc -eq 2 ] && grep -q "trunc.onnx" "$T/err" && ok "truncated ONNX: exit 2 naming the file" ||
        { bad "truncated ONNX (exit $rc)"; cat "$T/err"; }
fi
finish
