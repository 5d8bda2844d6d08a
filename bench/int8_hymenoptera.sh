#!/bin/sh
# INT8 post-training quantization on hymenoptera (ants vs bees): for each
# trained model and each calibrator, `deft classification export --data_type
# int8` over 160 training images (10 x 16, drawn at random), then top-1 on
# the 153 validation images of the FP32 ONNX and of the QDQ ONNX, both run in
# onnxruntime on the same deft-preprocessed input; plus deft itself on the
# FP32 model. Prints a table.
#   sh bench/int8_hymenoptera.sh [MODEL.safetensors ...]   (default: /tmp/models/*)
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
DATA=../shared/data/hymenoptera_256
[ -d "$DATA/val" ] || { echo "no $DATA"; exit 77; }
MODELS=${*:-"/tmp/models/squeezenet_ft.safetensors /tmp/models/resnet18.safetensors /tmp/models/mobilenet_v2.safetensors"}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
acc() { # acc PROBS.npy LIST.txt CLASSES_JSON -> top-1 in percent
    /usr/bin/python3 -c "
import json, sys, numpy as np
p = np.load(sys.argv[1]); names = json.loads(sys.argv[3])
paths = open(sys.argv[2]).read().split()
y = [names.index(q.split('/')[-2]) for q in paths]
print('%.2f' % (100.0 * float((p.argmax(1) == np.array(y)).mean())))" "$1" "$2" "$3"
}
printf "%-16s %-11s %8s %8s %8s %7s\n" model calibrator deft_fp32 ort_fp32 ort_int8 delta
for m in $MODELS; do
    n=$(basename "$m" .safetensors)
    [ -f "$m" ] || { echo "$n: missing $m"; continue; }
    classes=$(/usr/bin/python3 -c "
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
print(json.dumps(json.loads(json.loads(b[8:8 + n])['__metadata__']['meta'])['class_names']))" "$m")
    $DEFT model preprocess -m "$m" -i "$DATA/val" -o "$T/x.npy" --list "$T/list.txt" >/dev/null || exit 1
    $DEFT model run -m "$m" -i "$T/x.npy" -o "$T/deft.npy" >/dev/null || exit 1
    dacc=$(acc "$T/deft.npy" "$T/list.txt" "$classes")
    for c in entropy minmax percentile; do
        $DEFT classification export -m "$m" -o "$T/$n.onnx" --data_type int8 --calibrator $c \
            --cal_image_dir "$DATA/train" --qdq_file "$T/${n}_qdq.onnx" --dynamic_batch \
            --cal_cache_file "$T/cal.bin" >/dev/null || { echo "$n $c: export failed"; continue; }
        node tests/ref/ort_run.js "$T/$n.onnx" "$T/x.npy" "$T/fp32.npy" &&
        node tests/ref/ort_run.js "$T/${n}_qdq.onnx" "$T/x.npy" "$T/int8.npy" || exit 1
        f=$(acc "$T/fp32.npy" "$T/list.txt" "$classes")
        q=$(acc "$T/int8.npy" "$T/list.txt" "$classes")
        printf "%-16s %-11s %8s %8s %8s %+7.2f\n" "$n" $c "$dacc" "$f" "$q" "$(echo "$q - $f" | bc)"
    done
done
