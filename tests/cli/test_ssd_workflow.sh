#!/bin/sh
# SSD through the task layer on a tiny generated KITTI dataset (coloured boxes on
# noise, 16 train / 6 val images at 128x96): --dry_run checks the priors; training
# 2 epochs writes the shared loop's outputs with SSD's loss terms and val mAP;
# evaluate's mAP equals `deft detection score` of inference's KITTI output (one
# decode/NMS/letterbox path everywhere); --ap_mode coco names its definition;
# what is not finished (prune, dssd) exits 2 saying so.
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
$DEFT ssd train -e "$T/spec.txt" --dry_run >"$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "0 of [0-9]* training boxes have no anchor" "$T/out" && grep -q "classes *: 2: blue, red" "$T/out" &&
    ok "--dry_run: priors cover every box, classes sorted; exit 0" || { bad "--dry_run (exit $rc)"; cat "$T/out"; }
$DEFT ssd train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$T/run/weights/best.safetensors" ] && [ -f "$T/run/weights/latest.safetensors" ] &&
    [ "$(grep -c '"val"' "$T/run/status.json")" -eq 2 ] &&
    head -1 "$T/run/metrics.csv" | grep -q "loss_cls,loss_loc,val_loss,val_mAP" &&
    grep -q "priors) on 16 images of 2 classes, 2 epochs" "$T/train.log" &&
    ok "train 2 epochs: checkpoints, status.json, metrics.csv with loss_cls/loss_loc and val mAP" ||
    { bad "train (exit $rc)"; tail -20 "$T/train.log"; }
M=$T/run/weights/latest.safetensors
$DEFT ssd evaluate -e "$T/spec.txt" -m "$M" -r "$T/run" --ap_mode integrate >"$T/eval.log" 2>&1 &&
    $DEFT ssd inference -e "$T/spec.txt" -m "$M" -i "$T/d/val/images" -l "$T/pred" -o "$T/ann" --json "$T/d.json" >"$T/inf.log" 2>&1 &&
    $DEFT detection score -l "$T/d/val/labels" -p "$T/pred" --ap_mode integrate >"$T/score.log" 2>&1
rc=$?
e=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/eval.log" | grep -oE "[0-9.]+$")
s=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/score.log" | grep -oE "[0-9.]+$")
[ $rc -eq 0 ] && [ -n "$e" ] && [ "$e" = "$s" ] && [ -f "$T/run/evaluate/results.json" ] &&
    [ "$(ls "$T/ann" | wc -l)" -eq 6 ] && [ "$(ls "$T/pred" | wc -l)" -eq 6 ] &&
    awk 'NF != 16 { exit 1 }' "$T/pred"/*.txt &&
    ok "evaluate mAP $e == score of inference's KITTI output (16 fields) $s; 6 annotated images" ||
    { bad "evaluate/inference/score (exit $rc, '$e' vs '$s')"; cat "$T/eval.log" "$T/inf.log" "$T/score.log" 2>/dev/null | tail -15; }
$DEFT ssd evaluate -e "$T/spec.txt" -m "$M" --ap_mode coco >"$T/coco.log" 2>&1 &&
    grep -qE "^mAP \[coco" "$T/coco.log" && ok "--ap_mode coco: $(grep -oE '^mAP \[coco[^]]*\]' "$T/coco.log")" ||
    { bad "evaluate --ap_mode coco"; tail -5 "$T/coco.log"; }
expect2() { # name, pattern, deft args...
    name=$1 pat=$2; shift 2
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -qE "$pat" "$T/out" && ok "$name: exit 2" || { bad "$name (exit $rc)"; cat "$T/out"; }
}
expect2 "prune not finished" "ssd prune: not finished yet" ssd prune -m "$M" -o "$T/p.safetensors"
expect2 "a spec given as the model" "not a model file deft reads" ssd evaluate -e "$T/spec.txt" -m "$T/spec.txt"
sed 's/^ssd_config {/dssd_config {/' "$T/spec.txt" >"$T/dssd.txt"
expect2 "dssd not finished" "DSSD is not finished yet" ssd train -e "$T/dssd.txt" -r "$T/r2"
finish
