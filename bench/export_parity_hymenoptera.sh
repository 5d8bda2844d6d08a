#!/bin/sh
# Must-show 1 on real images: the trained models exported (logits, the
# OpenCV-readable ReLU6 form) and run by onnxruntime and OpenCV DNN on every
# validation image of hymenoptera_256, against deft on the same input:
# max abs diff of the logits and the number of images whose argmax agrees.
#   sh bench/export_parity_hymenoptera.sh [MODEL.safetensors ...]   (default: /tmp/models/*)
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
DATA=../shared/data/hymenoptera_256
[ -d "$DATA/val" ] || { echo "no $DATA"; exit 77; }
MODELS=${*:-"/tmp/models/squeezenet_ft.safetensors /tmp/models/resnet18.safetensors /tmp/models/mobilenet_v2.safetensors"}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf "%-16s %-12s %12s %16s\n" model peer max_abs_diff argmax_agrees
for m in $MODELS; do
    n=$(basename "$m" .safetensors)
    $DEFT model preprocess -m "$m" -i "$DATA/val" -o "$T/x.npy" >/dev/null &&
    $DEFT model run -m "$m" -i "$T/x.npy" -o "$T/deft.npy" >/dev/null &&
    $DEFT classification export -m "$m" -o "$T/$n.onnx" --logits --dynamic_batch --relu6 relu >/dev/null &&
    node tests/ref/ort_run.js "$T/$n.onnx" "$T/x.npy" "$T/ort.npy" &&
    /usr/bin/python3 tests/ref/export_check.py opencv "$T/$n.onnx" "$T/x.npy" "$T/cv.npy" || exit 1
    for p in ort cv; do
        /usr/bin/python3 -c "
import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print('%-16s %-12s %12.3g %12d/%d' % (sys.argv[3], sys.argv[4], np.abs(a - b).max(),
      (a.argmax(1) == b.argmax(1)).sum(), len(a)))" "$T/deft.npy" "$T/$p.npy" "$n" \
            "$([ $p = ort ] && echo onnxruntime || echo opencv_dnn)"
    done
done
