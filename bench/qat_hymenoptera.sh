#!/bin/sh
# Quantization-aware training on hymenoptera (ants vs bees), ResNet-18:
#   1. the float model: specs/hymenoptera_resnet18_scratch.yaml (15 epochs from
#      scratch), or FP32=MODEL.safetensors to reuse one;
#   2. QAT fine-tune from it: specs/hymenoptera_resnet18_qat.yaml (enable_qat,
#      5 epochs, lr 1e-4, batch norm on its running statistics; the last epoch's
#      weights are measured, not the best on validation);
#   3. `deft classification export --data_type int8` of the QAT model with no
#      calibration images: the float ONNX, cal.bin and the QDQ ONNX from the
#      learned ranges;
#   4. top-1 on the 153 validation images (one image = 0.65 points) of the QAT
#      model's FP32 ONNX and QDQ ONNX in onnxruntime and of deft's own QAT
#      forward, on the same deft-preprocessed input; and, for reference, the
#      float model's FP32 ONNX and its post-training INT8 (entropy calibration
#      over 160 training images, bench/int8_hymenoptera.sh's recipe).
#   sh bench/qat_hymenoptera.sh [RESULTS_DIR]     (FP32=MODEL to skip step 1;
#   QAT_ARGS="--set train_config.optimizer.sgd.lr=0.001" to vary the fine-tune)
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
DATA=../shared/data/hymenoptera_256
[ -d "$DATA/val" ] || { echo "no $DATA"; exit 77; }
R=${1:-runs/qat_hymenoptera}
mkdir -p "$R" || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
THREADS=${THREADS:-2}
if [ -z "$FP32" ]; then
    $DEFT classification train -e specs/hymenoptera_resnet18_scratch.yaml -r "$R/fp32" --threads $THREADS >"$R/fp32.log" 2>&1 ||
        { echo "float training failed (see $R/fp32.log)"; exit 1; }
    FP32=$R/fp32/weights/best.safetensors
fi
$DEFT classification train -e specs/hymenoptera_resnet18_qat.yaml -r "$R/qat" --threads $THREADS \
    --set train_config.pretrained_model_path="$FP32" $QAT_ARGS >"$R/qat.log" 2>&1 || { echo "QAT failed (see $R/qat.log)"; exit 1; }
QAT=$R/qat/weights/latest.safetensors
acc() { # acc OUT.npy -> top-1 in percent on $T/list.txt
    /usr/bin/python3 -c "
import json, sys, numpy as np
p = np.load(sys.argv[1]); names = json.loads(sys.argv[3])
paths = open(sys.argv[2]).read().split()
y = [names.index(q.split('/')[-2]) for q in paths]
print('%.2f' % (100.0 * float((p.argmax(1) == np.array(y)).mean())))" "$1" "$T/list.txt" "$classes"
}
classes=$(/usr/bin/python3 -c "
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
print(json.dumps(json.loads(json.loads(b[8:8 + n])['__metadata__']['meta'])['class_names']))" "$QAT")
$DEFT model preprocess -m "$QAT" -i "$DATA/val" -o "$T/x.npy" --list "$T/list.txt" >/dev/null || exit 1
# the QAT model: no calibration images
$DEFT classification export -m "$QAT" -o "$R/qat.onnx" --data_type int8 --qdq_file "$R/qat_qdq.onnx" \
    --cal_cache_file "$R/qat_cal.bin" --dynamic_batch --logits >"$R/qat_export.log" 2>&1 ||
    { echo "QAT export failed"; cat "$R/qat_export.log"; exit 1; }
$DEFT model run -m "$QAT" -i "$T/x.npy" -o "$T/deft_qat.npy" >/dev/null &&
node tests/ref/ort_run.js "$R/qat.onnx" "$T/x.npy" "$T/qat_fp32.npy" &&
node tests/ref/ort_run.js "$R/qat_qdq.onnx" "$T/x.npy" "$T/qat_int8.npy" || exit 1
# the float model: FP32 and post-training INT8
$DEFT classification export -m "$FP32" -o "$R/fp32.onnx" --data_type int8 --cal_image_dir "$DATA/train" \
    --qdq_file "$R/ptq_qdq.onnx" --cal_cache_file "$R/ptq_cal.bin" --dynamic_batch --logits >"$R/ptq_export.log" 2>&1 ||
    { echo "PTQ export failed"; cat "$R/ptq_export.log"; exit 1; }
node tests/ref/ort_run.js "$R/fp32.onnx" "$T/x.npy" "$T/fp32.npy" &&
node tests/ref/ort_run.js "$R/ptq_qdq.onnx" "$T/x.npy" "$T/ptq.npy" || exit 1
d=$(/usr/bin/python3 -c "
import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print('%.3g of max |logit| %.3g, argmax %d/%d equal' % (np.abs(a - b).max(), np.abs(a).max(), (a.argmax(1) == b.argmax(1)).sum(), len(a)))" \
    "$T/deft_qat.npy" "$T/qat_int8.npy")
echo "model                      runtime       top-1"
echo "float (FP32 training)      ORT FP32      $(acc "$T/fp32.npy")"
echo "float, post-training INT8  ORT QDQ       $(acc "$T/ptq.npy")   (entropy, 160 training images)"
echo "QAT fine-tuned             ORT FP32      $(acc "$T/qat_fp32.npy")"
echo "QAT fine-tuned             ORT QDQ       $(acc "$T/qat_int8.npy")   (learned ranges, no calibration images)"
echo "QAT fine-tuned             deft QAT fwd  $(acc "$T/deft_qat.npy")"
echo "deft QAT forward vs ORT QDQ logits: max |diff| $d"
