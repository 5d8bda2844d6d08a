#!/bin/sh
# `deft ssd export` of an SSD (resnet18) trained here for 2 epochs on the
# workflow test's tiny generated KITTI set (128x96):
# (a) --nms onnx passes onnx.checker (full check), the twelve head outputs
#     reordered in the graph (Transpose/Reshape/Concat, Softmax), and in
#     onnxruntime-node on the inputs `ssd inference --dump_input` wrote (one
#     batch) gives deft inference's detections: same count per image, same
#     classes, boxes within 0.5 px in image pixels, scores within 1e-4;
# (b) --nms trt (default): TAO's NMSDynamic_TRT node "NMS" (attributes, inputs
#     anchor_data constant / loc_data / conf_data in TAO's shapes, outputs NMS
#     [N,1,keepTopK,7] and NMS_1); the graph cut before the plugin, read as
#     TensorRT's NMS plugin reads its inputs (CENTER_SIZE with the priors'
#     variances), gives the --nms none export's boxes and scores;
# (c) int8: cal.bin has a line per activation of the network, the QDQ model
#     runs in onnxruntime; --gen_ds_config: TAO's SSD parser, background first;
# (d) bad input exits 2, one line, no file.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
/usr/bin/python3 - "$T/d" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
rng = np.random.default_rng(5)
root = sys.argv[1]
for split, n in (("train", 16), ("val", 6)):
    os.makedirs(f"{root}/{split}/images"); os.makedirs(f"{root}/{split}/labels")
    for i in range(n):
        a = rng.normal(120, 20, (96, 128, 3))
        lines = []
        for k in range(1 + i % 3):
            w, h = rng.integers(24, 56), rng.integers(20, 44)
            x, y = rng.integers(0, 128 - w), rng.integers(0, 96 - h)
            red = (i + k) % 2 == 0
            a[y:y + h, x:x + w] = (220, 40, 40) if red else (40, 60, 220)
            lines.append(f"{'red' if red else 'blue'} 0.00 0 0.00 {x}.00 {y}.00 {x + w}.00 {y + h}.00 0 0 0 0 0 0 0")
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{root}/{split}/images/{i:03d}.jpg")
        open(f"{root}/{split}/labels/{i:03d}.txt", "w").write("\n".join(lines) + "\n")
PY
cat >"$T/spec.txt" <<EOT
random_seed: 7
ssd_config {
  aspect_ratios_global: "[1.0, 2.0, 0.5]"
  scales: "[0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0]"
  two_boxes_for_ar1: true
  variances: "[0.1, 0.1, 0.2, 0.2]"
  arch: "resnet"
  nlayers: 18
  pos_iou_thresh: 0.4
  neg_iou_thresh: 0.4
}
training_config {
  batch_size_per_gpu: 4
  num_epochs: 2
  learning_rate { soft_start_annealing_schedule { min_learning_rate: 1e-4 max_learning_rate: 1e-3 soft_start: 0.1 annealing: 0.8 } }
  optimizer { adam { epsilon: 1e-7 beta1: 0.9 beta2: 0.999 } }
}
eval_config { validation_period_during_training: 1 average_precision_mode: SAMPLE batch_size: 4 matching_iou_threshold: 0.5 }
nms_config { confidence_threshold: 0.05 clustering_iou_threshold: 0.5 top_k: 50 }
augmentation_config { output_width: 128 output_height: 96 output_channel: 3 }
dataset_config {
  data_sources: { label_directory_path: "$T/d/train/labels" image_directory_path: "$T/d/train/images" }
  validation_data_sources: { label_directory_path: "$T/d/val/labels" image_directory_path: "$T/d/val/images" }
  include_difficult_in_training: true
  image_extension: "jpg"
  target_class_mapping { key: "red" value: "red" }
  target_class_mapping { key: "blue" value: "blue" }
}
EOT
REF="/usr/bin/python3 $SRC/tests/ref/ssd_export_check.py"
need_onnx_peers
$DEFT ssd train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1 || { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
M=$T/run/weights/latest.safetensors
ls "$T/d/val/images" | sed 's/\.jpg$//' >"$T/val.txt"

# (a) --nms onnx against deft inference
$DEFT ssd export -m "$M" -e "$T/spec.txt" -o "$T/onnx.onnx" --nms onnx >"$T/x.log" 2>&1 &&
    $REF check "$T/onnx.onnx" num_detections,detection_boxes,detection_scores,detection_classes &&
    ok "--nms onnx: onnx.checker full_check, input Input, outputs, metadata" || { bad "--nms onnx export"; cat "$T/x.log"; }
P=$(grep -oE "[0-9]+ priors" "$T/x.log" | head -1 | cut -d' ' -f1)
$DEFT ssd inference -e "$T/spec.txt" -m "$M" -i "$T/d/val/images" --json "$T/d.json" --dump_input "$T/dump" \
    >"$T/inf.log" 2>&1 && [ "$(ls "$T/dump"/*.npy | wc -l)" -eq 6 ] &&
    ok "inference --dump_input: 6 inputs and letterboxes" || { bad "inference --dump_input"; cat "$T/inf.log"; }
$REF stack "$T/dump" "$T/val.txt" "$T/x.npy" &&
    node "$SRC/tests/ref/ort_run.js" "$T/onnx.onnx" "$T/x.npy" "$T/ort/" &&
    $REF dets "$T/onnx.onnx" "$T/d.json" "$T/dump" "$T/val.txt" "$T/ort" &&
    ok "onnxruntime (batch of 6) == deft ssd inference: counts, classes, boxes, scores" || bad "onnxruntime vs deft inference"

# (b) --nms trt: TAO's plugin node; the plugin's view of its inputs == --nms none
$DEFT ssd export -m "$M" -e "$T/spec.txt" -o "$T/trt.onnx" >"$T/x.log" 2>&1 &&
    $REF trt "$T/trt.onnx" 3 50 0.05 0.5 "$P" &&
    ok "--nms trt (default): NMSDynamic_TRT 'NMS', TAO's attributes, inputs and outputs" || { bad "--nms trt"; cat "$T/x.log"; }
$DEFT ssd export -m "$M" -e "$T/spec.txt" -o "$T/none.onnx" --nms none >"$T/x.log" 2>&1 &&
    $REF check "$T/none.onnx" boxes,scores && $REF cut "$T/trt.onnx" "$T/cut.onnx" "$T/anchor.npy" &&
    node "$SRC/tests/ref/ort_run.js" "$T/cut.onnx" "$T/x.npy" "$T/ort_cut/" &&
    node "$SRC/tests/ref/ort_run.js" "$T/none.onnx" "$T/x.npy" "$T/ort_none/" &&
    $REF plugin_decode "$T/ort_cut" "$T/anchor.npy" "$T/ort_none" &&
    ok "trt graph before the plugin, read as the NMS plugin reads it == --nms none" || { bad "trt cut vs --nms none"; cat "$T/x.log"; }

# (c) int8 and DeepStream
Q=$T/q
mkdir -p "$Q" "$T/q2"
$DEFT ssd export -m "$M" -e "$T/spec.txt" -o "$Q/m.onnx" --nms onnx --data_type int8 --cal_image_dir "$T/d/train/images" \
    --batches 2 --batch_size 4 --qdq_file "$Q/qdq.onnx" >"$T/x.log" 2>&1 &&
    $REF int8 "$Q/m.onnx" "$Q/cal.bin" "$Q/qdq.onnx" &&
    node "$SRC/tests/ref/ort_run.js" "$Q/qdq.onnx" "$T/x.npy" "$T/ort_q/" && [ -f "$T/ort_q/num_detections.npy" ] &&
    ok "int8: cal.bin (every activation of the network), QDQ with the heads float runs in onnxruntime" ||
    { bad "int8 export"; cat "$T/x.log"; }
Q=$T/q2
$DEFT ssd export -m "$M" -e "$T/spec.txt" -o "$Q/m.onnx" --data_type int8 --cal_image_dir "$T/d/train/images" \
    --batches 2 --batch_size 4 --gen_ds_config >"$T/x.log" 2>&1 && [ -f "$Q/cal.bin" ] &&
    grep -qx "output-blob-names=NMS" "$Q/nvinfer_config.txt" &&
    grep -qx "parse-bbox-func-name=NvDsInferParseCustomNMSTLT" "$Q/nvinfer_config.txt" &&
    grep -qx "offsets=103.939;116.779;123.68" "$Q/nvinfer_config.txt" && grep -qx "model-color-format=1" "$Q/nvinfer_config.txt" &&
    grep -qx "infer-dims=3;96;128" "$Q/nvinfer_config.txt" && grep -qx "network-mode=1" "$Q/nvinfer_config.txt" &&
    grep -qx "num-detected-classes=3" "$Q/nvinfer_config.txt" && grep -qx "int8-calib-file=cal.bin" "$Q/nvinfer_config.txt" &&
    [ "$(tr '\n' ' ' <"$Q/labels.txt")" = "background blue red " ] &&
    ok "--gen_ds_config: nvinfer_config.txt (NvDsInferParseCustomNMSTLT, BGR offsets, int8), labels.txt background first" ||
    { bad "--gen_ds_config"; cat "$T/x.log" "$Q/nvinfer_config.txt" "$Q/labels.txt"; }
$DEFT ssd export --help >"$T/h.txt" 2>&1
missing=""
for f in --nms --data_type --cal_image_dir --cal_cache_file --batches --batch_size --calibrator --qdq_file \
    --gen_ds_config NMSDynamic_TRT NonMaxSuppression Input; do
    grep -q -- "$f" "$T/h.txt" || missing="$missing $f"
done
[ -z "$missing" ] && ok "export --help documents every flag" || bad "export --help lacks:$missing"

# (d) bad input: exit 2, one line, no file
E=$T/e
mkdir -p "$E"
sed '/^nms_config {/d' "$T/spec.txt" >"$T/nonms.txt"
expect2() { # name, deft args...
    name=$1; shift
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && [ "$(grep -c . "$T/out")" -eq 1 ] && [ -z "$(ls "$E")" ] && ok "$name: exit 2, one line, no file" ||
        { bad "$name (exit $rc, files: $(ls "$E"))"; cat "$T/out"; rm -f "$E"/*; }
}
expect2 "unknown --nms" ssd export -m "$M" -e "$T/spec.txt" -o "$E/m.onnx" --nms fast
expect2 "spec without nms_config" ssd export -m "$M" -e "$T/nonms.txt" -o "$E/m.onnx" --nms onnx
expect2 "NMS without a spec" ssd export -m "$M" -o "$E/m.onnx"
expect2 "too few calibration images" ssd export -m "$M" -e "$T/spec.txt" -o "$E/m.onnx" --data_type int8 \
    --cal_image_dir "$T/d/val/images" --batches 2 --batch_size 4
expect2 "missing model" ssd export -m "$T/nope.safetensors" -e "$T/spec.txt" -o "$E/m.onnx"
expect2 "int8 flags without int8" ssd export -m "$M" -e "$T/spec.txt" -o "$E/m.onnx" --qdq_file "$E/q.onnx"
expect2 "--gen_ds_config without trt" ssd export -m "$M" -e "$T/spec.txt" -o "$E/m.onnx" --nms onnx --gen_ds_config
finish
