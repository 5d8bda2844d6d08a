#!/bin/sh
# deft unet export: a trained UNet (ResNet-10 encoder, batch norm everywhere, grey input) as
# float ONNX, checked against deft's own forward pass on the same tensor by independent
# runtimes: onnxruntime-node and OpenCV DNN on the logits (1e-4), onnxruntime on the
# softmax over the class axis and on the ArgMax class map (identical pixels); onnx.checker
# accepts each file; a vgg-16 UNet (one epoch) exports too. A classifier or a bad --output:
# exit 2. deft unet prune through the skip concatenations: the pruned model evaluates,
# retrains from model_config.pruned_model_path with every weight loaded, and exports.
# --data_type int8: cal.bin, calib.json and a QDQ ONNX that keeps the float model's class map.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
need_onnx_peers
DEFT=$(cd "$(dirname "$DEFT")" && pwd)/$(basename "$DEFT")
REF="/usr/bin/python3 $SRC/tests/ref/export_check.py"
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(9)
for split, n in (("train", 8), ("val", 2)):
    os.makedirs(f"{root}/images/{split}"); os.makedirs(f"{root}/masks/{split}")
    for i in range(n):
        m = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(8, 40, 2)
        m[y:y + 20, x:x + 20] = 2
        m[:6] = 1
        img = 60 + 60 * m + rng.normal(0, 20, (64, 64))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{root}/images/{split}/{i}.png")
        Image.fromarray(m).save(f"{root}/masks/{split}/{i}.png")
np.save(os.path.join(os.path.dirname(root), "x.npy"), rng.normal(0, 0.6, (1, 1, 64, 64)).astype(np.float32))
PY
cat >"$T/spec.yaml" <<EOF
random_seed: 3
model_config: {model_input_width: 64, model_input_height: 64, model_input_channels: 3, arch: resnet,
               num_layers: 10, use_batch_norm: true}
training_config: {batch_size: 4, epochs: 2, learning_rate: 0.001, optimizer: {adam: {epsilon: 1e-8, beta1: 0.9, beta2: 0.999}}}
dataset_config:
  input_image_type: color
  train_images_path: $T/data/images/train
  train_masks_path: $T/data/masks/train
  val_images_path: $T/data/images/val
  val_masks_path: $T/data/masks/val
  data_class_config:
    target_classes:
      - {name: ground, mapping_class: ground, label_id: 0}
      - {name: sky, mapping_class: sky, label_id: 1}
      - {name: box, mapping_class: box, label_id: 2}
EOF
$DEFT unet train -e "$T/spec.yaml" -r "$T/run" --threads 1 >"$T/train.log" 2>&1 ||
    { bad "train: $(tail -3 "$T/train.log")"; finish; exit 1; }
M=$T/run/weights/best.safetensors
# colour spec: the model takes 3 channels; the reference input repeats the grey tensor
/usr/bin/python3 -c "import numpy as np; x=np.load('$T/x.npy'); np.save('$T/x3.npy', np.repeat(x, 3, 1))"
$DEFT model run -m "$M" -i "$T/x3.npy" -o "$T/deft.npy" >/dev/null 2>&1 || bad "deft model run"
for o in logits softmax argmax; do
    $DEFT unet export -m "$M" -o "$T/$o/m.onnx" --output $o >"$T/$o.log" 2>&1 && $REF check "$T/$o/m.onnx" >/dev/null &&
        ok "export --output $o: onnx.checker passes ($(head -1 "$T/$o.log" | sed 's/.*-> //'))" || bad "export $o: $(tail -2 "$T/$o.log")"
    node "$SRC/tests/ref/ort_run.js" "$T/$o/m.onnx" "$T/x3.npy" "$T/ort_$o.npy" 2>"$T/ort.err" || bad "ort $o: $(cat "$T/ort.err")"
done
$REF compare "$T/deft.npy" "$T/ort_logits.npy" 1e-4 >"$T/c1" && ok "onnxruntime logits = deft's ($(cat "$T/c1"))" ||
    bad "onnxruntime logits: $(cat "$T/c1")"
$REF opencv "$T/logits/m.onnx" "$T/x3.npy" "$T/ocv.npy" >/dev/null 2>&1 && $REF compare "$T/deft.npy" "$T/ocv.npy" 1e-4 >"$T/c2" &&
    ok "OpenCV DNN logits = deft's ($(cat "$T/c2"))" || bad "OpenCV DNN: $(cat "$T/c2" 2>/dev/null)"
/usr/bin/python3 - "$T" <<'PY' && ok "softmax over the class axis and the ArgMax class map match deft's logits" || bad "softmax / argmax outputs"
import sys, numpy as np
t = sys.argv[1]
y = np.load(f"{t}/deft.npy").astype(np.float64)
e = np.exp(y - y.max(1, keepdims=True)); p = e / e.sum(1, keepdims=True)
s = np.load(f"{t}/ort_softmax.npy")
assert s.shape == y.shape and np.abs(s - p).max() < 1e-5, np.abs(s - p).max()
a = np.load(f"{t}/ort_argmax.npy")
assert a.shape == (1, 1) + y.shape[2:], a.shape
same = (a[:, 0] == y.argmax(1)).mean()
assert same >= 0.9999, same
print("softmax max diff %.2e, class map %.4f identical" % (np.abs(s - p).max(), same))
PY
# the vgg-16 UNet (one epoch; TAO's decoder, no activation in it): onnx.checker passes and
# onnxruntime = deft (the EfficientNet-B0 UNet adds no op the others lack: not repeated here)
V=$T/vgg
$DEFT unet train -e "$T/spec.yaml" -r "$V" --threads 1 --set model_config.arch=vgg --set model_config.num_layers=16 \
    --set training_config.epochs=1 >"$T/vgg.log" 2>&1 &&
    $DEFT unet export -m "$V/weights/best.safetensors" -o "$V/m.onnx" --output logits >/dev/null 2>&1 &&
    $REF check "$V/m.onnx" >/dev/null &&
    $DEFT model run -m "$V/weights/best.safetensors" -i "$T/x3.npy" -o "$V/d.npy" >/dev/null 2>&1 &&
    node "$SRC/tests/ref/ort_run.js" "$V/m.onnx" "$T/x3.npy" "$V/o.npy" 2>/dev/null &&
    $REF compare "$V/d.npy" "$V/o.npy" 1e-4 >"$V/c" &&
    ok "a vgg-16 UNet exports: onnx.checker passes, onnxruntime = deft ($(cat "$V/c"))" ||
    bad "vgg UNet export: $(tail -2 "$T/vgg.log"; cat "$V/c" 2>/dev/null)"
# prune (TAO's rules through the skip concats), evaluate, retrain from it, export it
$DEFT unet prune -m "$M" -o "$T/pruned.safetensors" --target_ratio 0.5 >"$T/prune.log" 2>&1 &&
    ratio=$(sed -n 's/^Pruning ratio (pruned model \/ original model): //p' "$T/prune.log") &&
    /usr/bin/python3 -c "import sys; sys.exit(0 if 0.3 < float('$ratio') <= 0.5 else 1)" &&
    ok "prune --target_ratio 0.5: ratio $ratio" || bad "prune: $(tail -3 "$T/prune.log")"
$DEFT unet evaluate -e "$T/spec.yaml" -m "$T/pruned.safetensors" >"$T/pe.log" 2>&1 && grep -q "^mIoU:" "$T/pe.log" &&
    ok "the pruned model evaluates ($(grep '^mIoU:' "$T/pe.log" | tr -s ' '))" || bad "evaluate pruned: $(tail -2 "$T/pe.log")"
$DEFT unet train -e "$T/spec.yaml" -r "$T/re" --threads 1 --set training_config.epochs=1 \
    --set model_config.pruned_model_path="$T/pruned.safetensors" >"$T/re.log" 2>&1 &&
    grep -q "pruned.safetensors: [0-9]* loaded, 0 shape mismatch, 0 without weights" "$T/re.log" &&
    ok "retraining from model_config.pruned_model_path loads every weight" || bad "retrain pruned: $(grep -i 'pruned\|deft:' "$T/re.log" | head -3)"
$DEFT unet export -m "$T/pruned.safetensors" -o "$T/pr/m.onnx" --output logits >/dev/null 2>&1 &&
    $DEFT model run -m "$T/pruned.safetensors" -i "$T/x3.npy" -o "$T/pd.npy" >/dev/null 2>&1 &&
    node "$SRC/tests/ref/ort_run.js" "$T/pr/m.onnx" "$T/x3.npy" "$T/po.npy" 2>/dev/null &&
    $REF compare "$T/pd.npy" "$T/po.npy" 1e-4 >"$T/c3" && ok "the pruned model exports: onnxruntime = deft ($(cat "$T/c3"))" ||
    bad "pruned export: $(cat "$T/c3" 2>/dev/null)"
# INT8: ranges from 8 training images into cal.bin / calib.json and a QDQ ONNX whose class map on a
# real image (preprocessed as training does: x / 127.5 - 1) agrees with the float model's
$DEFT unet export -m "$M" -o "$T/i8/m.onnx" --output logits --data_type int8 --cal_image_dir "$T/data/images/train" \
    --batches 2 --batch_size 4 --cal_json_file "$T/i8/calib.json" --qdq_file "$T/i8/q.onnx" >"$T/i8.log" 2>&1 &&
    $REF calcache "$T/i8/cal.bin" "$T/i8/calib.json" "$T/i8/m.onnx" >"$T/cc" 2>&1 &&
    ok "int8: cal.bin and calib.json agree with the graph's tensors ($(tail -1 "$T/cc"))" || bad "int8 export: $(tail -3 "$T/i8.log"; cat "$T/cc")"
/usr/bin/python3 -c "
import numpy as np; from PIL import Image
a = np.asarray(Image.open('$T/data/images/val/0.png').convert('RGB'), np.float32) / 127.5 - 1
np.save('$T/img.npy', a.transpose(2, 0, 1)[None].copy())"
node "$SRC/tests/ref/ort_run.js" "$T/i8/m.onnx" "$T/img.npy" "$T/f32.npy" 2>/dev/null &&
    ORT_OPT=disabled node "$SRC/tests/ref/ort_run.js" "$T/i8/q.onnx" "$T/img.npy" "$T/q8.npy" 2>/dev/null &&
    /usr/bin/python3 -c "
import sys, numpy as np
f, q = np.load('$T/f32.npy'), np.load('$T/q8.npy')
same = (f.argmax(1) == q.argmax(1)).mean()
print('%.4f of the pixels in the same class, logits within %.3f' % (same, np.abs(f - q).max()))
sys.exit(0 if same >= 0.95 else 1)" >"$T/qq" && ok "QDQ ONNX in onnxruntime: $(cat "$T/qq")" || bad "QDQ: $(cat "$T/qq" 2>/dev/null)"
# DeepStream files for nvinfer's semantic segmentation, consistent with the ONNX they name
$DEFT unet export -m "$M" -o "$T/ds/m.onnx" --gen_ds_config --data_type int8 --cal_image_dir "$T/data/images/train" \
    --batches 1 --batch_size 4 >"$T/ds.log" 2>&1 && /usr/bin/python3 - "$T/ds" <<'PY' &&
import sys, onnx
d = sys.argv[1]
kv = dict(l.strip().split("=", 1) for l in open(d + "/nvinfer_config.txt") if "=" in l and not l.startswith("#"))
outs = [o.name for o in onnx.load(d + "/m.onnx").graph.output]
want = {"network-type": "2", "num-detected-classes": "3", "infer-dims": "3;64;64", "int8-calib-file": "cal.bin",
        "network-mode": "1", "onnx-file": "m.onnx", "segmentation-output-order": "0", "model-color-format": "0"}
for k, v in want.items():
    assert kv.get(k) == v, (k, kv.get(k))
assert kv["output-blob-names"] in outs, (kv["output-blob-names"], outs)
assert abs(float(kv["net-scale-factor"]) - 1 / 127.5) < 1e-9 and kv["offsets"] == "127.5;127.5;127.5"
assert open(d + "/labels.txt").read().split() == ["ground", "sky", "box"]
PY
    ok "--gen_ds_config: nvinfer_config.txt (network-type=2, the ONNX's output, int8 cal.bin) and labels.txt" ||
    bad "DeepStream files: $(tail -3 "$T/ds.log")"
$DEFT unet export -m "$M" -o "$T/bad.onnx" --output argmax --gen_ds_config >/dev/null 2>"$T/e0"; rc=$?
[ $rc -eq 2 ] && grep -q "class probabilities" "$T/e0" && ok "--gen_ds_config with --output argmax: exit 2" || bad "ds argmax: exit $rc $(cat "$T/e0")"
$DEFT unet export -m "$M" -o "$T/bad.onnx" --output probs >/dev/null 2>"$T/e1"; rc=$?
[ $rc -eq 2 ] && grep -q "\-\-output 'probs'" "$T/e1" && [ ! -e "$T/bad.onnx" ] && ok "--output probs: exit 2" || bad "--output probs: exit $rc $(cat "$T/e1")"
$DEFT model init --arch resnet10 --classes 2 -o "$T/cls.safetensors" >/dev/null 2>&1
$DEFT unet export -m "$T/cls.safetensors" -o "$T/bad.onnx" >/dev/null 2>"$T/e2"; rc=$?
[ $rc -eq 2 ] && grep -q "not a UNet model" "$T/e2" && ok "a classifier: exit 2, not a UNet model" || bad "classifier: exit $rc $(cat "$T/e2")"
finish
