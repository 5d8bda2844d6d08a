#!/bin/sh
# Faster R-CNN through the task layer on a tiny generated KITTI dataset
# (coloured rectangles, 2 classes, 208x160 PNGs): `train` 2 epochs writes the
# shared loop's outputs with TAO's four loss terms, val mAP and RPN recall;
# `evaluate` prints TAO's mAP and the RPN recall, and --ap_mode coco the COCO
# one; `inference` writes KITTI labels with scores, overlays and JSON, and
# `deft detection score` of its labels gives exactly the mAP `evaluate`
# printed and as many detections (one proposal/decode/NMS/letterbox path
# everywhere); the loss falls; export is
# still refused (not finished); bad input exits 2.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
/usr/bin/python3 -c "import numpy, cv2" 2>/dev/null || { echo "SKIP: python3 numpy / opencv not available"; exit 77; }
mkdir -p "$T/data/images" "$T/data/labels"
/usr/bin/python3 - "$T/data" <<'PY'
import sys, numpy as np, cv2
d = sys.argv[1]; rng = np.random.default_rng(3)
names = {"train": [], "val": []}
for i in range(16):
    img = np.full((160, 208, 3), 40, np.uint8) + rng.integers(0, 20, (160, 208, 3), dtype=np.uint8)
    lines = []
    for k in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(0, 2)); w, h = int(rng.integers(28, 64)), int(rng.integers(28, 64))
        x, y = int(rng.integers(0, 208 - w)), int(rng.integers(0, 160 - h))
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (40, 40, 230) if cls else (40, 230, 40), -1)
        lines.append(f"{'red' if cls else 'green'} 0.00 0 0.00 {x}.00 {y}.00 {x + w}.00 {y + h}.00 0 0 0 0 0 0 0")
    cv2.imwrite(f"{d}/images/{i:03d}.png", img)
    open(f"{d}/labels/{i:03d}.txt", "w").write("\n".join(lines) + "\n")
    names["train" if i < 12 else "val"].append(f"{i:03d}")
for k, v in names.items(): open(f"{d}/{k}.txt", "w").write("\n".join(v) + "\n")
PY
D=$T/data
cat >"$T/spec.txt" <<EOF2
random_seed: 7
model_config {
  input_image_config { image_type: RGB image_channel_order: 'bgr' size_height_width { height: 160 width: 208 }
    image_channel_mean { key: 'b' value: 103.939 } image_channel_mean { key: 'g' value: 116.779 }
    image_channel_mean { key: 'r' value: 123.68 } image_scaling_factor: 1.0 }
  arch: "resnet:10"
  anchor_box_config { scale: 32.0 scale: 56.0 ratio: 1.0 }
  roi_mini_batch: 8
  rpn_stride: 16
  roi_pooling_config { pool_size: 7 pool_size_2x: False }
}
dataset_config {
  data_sources: { label_directory_path: "$D/labels" image_directory_path: "$D/images" split_list_path: "$D/train.txt" }
  validation_data_source: { label_directory_path: "$D/labels" image_directory_path: "$D/images" split_list_path: "$D/val.txt" }
  image_extension: 'png'
  target_class_mapping { key: 'red' value: 'red' }
  target_class_mapping { key: 'green' value: 'green' }
}
augmentation_config { preprocessing { output_image_width: 208 output_image_height: 160 output_image_channel: 3 }
  spatial_augmentation { hflip_probability: 0.5 } }
training_config {
  enable_augmentation: True batch_size_per_gpu: 2 num_epochs: 2 checkpoint_interval: 1
  rpn_min_overlap: 0.3 rpn_max_overlap: 0.7 classifier_min_overlap: 0.0 classifier_max_overlap: 0.5
  std_scaling: 1.0 gt_as_roi: True
  classifier_regr_std { key: 'x' value: 10.0 } classifier_regr_std { key: 'y' value: 10.0 }
  classifier_regr_std { key: 'w' value: 5.0 } classifier_regr_std { key: 'h' value: 5.0 }
  rpn_mini_batch: 32 rpn_pre_nms_top_N: 200 rpn_nms_max_boxes: 32 rpn_nms_overlap_threshold: 0.7
  optimizer { sgd { lr: 0.01 momentum: 0.9 } }
  learning_rate { soft_start { base_lr: 0.01 start_lr: 0.001 soft_start: 0.1 annealing_points: 0.8
    annealing_divider: 10.0 } }
  lambda_rpn_regr: 1.0 lambda_rpn_class: 1.0 lambda_cls_regr: 1.0 lambda_cls_class: 1.0
}
inference_config { rpn_pre_nms_top_N: 200 rpn_nms_max_boxes: 16 rpn_nms_overlap_threshold: 0.7
  object_confidence_thres: 0.0001 bbox_visualize_threshold: 0.3 classifier_nms_max_boxes: 20
  classifier_nms_overlap_threshold: 0.3 }
evaluation_config { batch_size: 2 rpn_pre_nms_top_N: 200 rpn_nms_max_boxes: 16 rpn_nms_overlap_threshold: 0.7
  classifier_nms_max_boxes: 20 classifier_nms_overlap_threshold: 0.3 object_confidence_thres: 0.0001
  use_voc07_11point_metric: False gt_matching_iou_threshold: 0.5 }
EOF2
$DEFT faster_rcnn train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$T/run/weights/best.safetensors" ] && [ -f "$T/run/weights/latest.safetensors" ] &&
    [ "$(grep -c '"val"' "$T/run/status.json")" -eq 2 ] &&
    head -1 "$T/run/metrics.csv" | grep -q "loss_rpn_class,loss_rpn_regr,loss_cls_class,loss_cls_regr,val_mAP,val_rpn_recall" &&
    [ -f "$T/run/plots/map.svg" ] && grep -q "RPN recall@0.5" "$T/train.log" &&
    ok "train 2 epochs: checkpoints, status.json, metrics.csv with the four loss terms, val mAP and RPN recall" ||
    { bad "train (exit $rc)"; tail -20 "$T/train.log"; }
l1=$(grep -oE "^epoch 1/2: loss [0-9.]+" "$T/train.log" | grep -oE "[0-9.]+$")
l2=$(grep -oE "^epoch 2/2: loss [0-9.]+" "$T/train.log" | grep -oE "[0-9.]+$")
[ -n "$l1" ] && [ -n "$l2" ] && awk "BEGIN{exit !($l2 < $l1)}" && ok "the loss falls: epoch 1 $l1, epoch 2 $l2" ||
    bad "the loss does not fall ('$l1' -> '$l2')"
M=$T/run/weights/latest.safetensors
mkdir -p "$T/img" "$T/gt"
for s in $(cat "$D/val.txt"); do ln -s "$D/images/$s.png" "$T/img/"; cp "$D/labels/$s.txt" "$T/gt/"; done
$DEFT faster_rcnn evaluate -e "$T/spec.txt" -m "$M" -r "$T/run" >"$T/eval.log" 2>&1 &&
    $DEFT faster_rcnn inference -e "$T/spec.txt" -m "$M" -i "$T/img" -l "$T/pred" -o "$T/ann" --json "$T/d.json" \
        --threshold 0.0001 >"$T/inf.log" 2>&1 &&
    $DEFT detection score -l "$T/gt" -p "$T/pred" --ap_mode integrate -o "$T/score.json" >"$T/score.log" 2>&1
rc=$?
e=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/eval.log" | grep -oE "[0-9.]+$")
s=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/score.log" | grep -oE "[0-9.]+$")
nd=$(awk '/^(green|red) /{n += $6} END{print n + 0}' "$T/eval.log")
np=$(cat "$T/pred"/*.txt | grep -c .)
[ $rc -eq 0 ] && [ -n "$e" ] && [ "$e" = "$s" ] && [ "$nd" -gt 0 ] && [ "$nd" -eq "$np" ] && [ -f "$T/run/evaluate/results.json" ] && grep -q "^RPN recall" "$T/eval.log" &&
    [ "$(ls "$T/ann" | wc -l)" -eq 4 ] && [ "$(ls "$T/pred" | wc -l)" -eq 4 ] && grep -q '"detections"' "$T/d.json" &&
    ok "evaluate mAP $e == score of inference's KITTI output $s; $nd detections in both; 4 overlays, JSON" ||
    { bad "evaluate/inference/score (exit $rc, '$e' vs '$s', $nd vs $np detections)"; cat "$T/eval.log" "$T/inf.log" "$T/score.log" 2>/dev/null | tail -14; }
$DEFT faster_rcnn evaluate -e "$T/spec.txt" -m "$M" --ap_mode coco >"$T/coco.log" 2>&1 && grep -q "^mAP \[coco" "$T/coco.log" &&
    ok "evaluate --ap_mode coco: $(grep -oE '^mAP \[coco[^]]*\]: +[0-9.]+' "$T/coco.log")" || { bad "--ap_mode coco"; tail -5 "$T/coco.log"; }
expect() { # name, pattern, deft args...
    name=$1 pat=$2; shift 2
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -qE "$pat" "$T/out" && ok "$name: exit 2, $(grep -oE "$pat" "$T/out" | head -1)" ||
        { bad "$name (exit $rc)"; cat "$T/out"; }
}
sed 's/rpn_mini_batch:/rpn_mini_bach:/' "$T/spec.txt" >"$T/typo.txt"
expect "inference without -i" "give the images with -i" faster_rcnn inference -m "$M" -l "$T/x"
expect "a missing model" "no such model file" faster_rcnn evaluate -e "$T/spec.txt" -m "$T/none.safetensors"
expect "export" "not finished yet \(issue 20\)" faster_rcnn export -m "$M" -o "$T/x.onnx"
expect "typo in the spec" "typo.txt:[0-9]+:[0-9]+: .*rpn_mini_bach" faster_rcnn train -e "$T/typo.txt" -r "$T/r2"
finish
