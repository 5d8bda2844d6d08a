#!/bin/sh
# DetectNet_v2 end to end on a tiny generated KITTI dataset (tests/ref/dnv2_toy_data.py:
# 16 train / 6 val images of 160x128, two classes; the spec tests/data/detectnet_v2_toy.txt
# has a DBSCAN class and an NMS class, auto-weighting on): train 2 epochs writes the shared
# loop's outputs with loss_cov / loss_bbox and TAO's DetectNet_v2 val mAP, and the loss
# falls; evaluate prints TAO's metric and, with --ap_mode integrate, exactly what `deft
# detection score` gives for inference's KITTI output (one clustering path everywhere);
# inference writes TAO's layout (labels/ + images_annotated/) from the experiment spec and
# from an inference spec (bbox_handler_config, output_map renaming a class); resume.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/dnv2_fixture.inc"
$D train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$T/run/weights/best.safetensors" ] && [ -f "$T/run/weights/latest.safetensors" ] &&
    [ "$(grep -c '"val"' "$T/run/status.json")" -eq 2 ] &&
    head -1 "$T/run/metrics.csv" | grep -q "loss_cov,loss_bbox,val_loss,val_mAP" &&
    grep -q "AP (TAO DetectNet_v2 INTEGRATE): square [0-9.]* block [0-9.]*" "$T/train.log" &&
    ok "train 2 epochs: checkpoints, status.json, metrics.csv with loss_cov/loss_bbox and TAO's val mAP" ||
    { bad "train (exit $rc)"; tail -20 "$T/train.log"; }
l1=$(grep -oE "^epoch 1/2: loss [0-9.]+" "$T/train.log" | grep -oE "[0-9.]+$")
l2=$(grep -oE "^epoch 2/2: loss [0-9.]+" "$T/train.log" | grep -oE "[0-9.]+$")
[ -n "$l1" ] && [ -n "$l2" ] && awk "BEGIN{exit !($l2 < $l1)}" && ok "the loss falls: $l1 -> $l2" ||
    bad "loss $l1 -> $l2"
M=$T/run/weights/latest.safetensors
$D evaluate -e "$T/spec.txt" -m "$M" -r "$T/run" >"$T/eval.log" 2>&1 &&
    grep -q "TAO DetectNet_v2 INTEGRATE (compute_metrics.py" "$T/eval.log" && grep -q "^mAP \[detectnet_v2\]: " "$T/eval.log" &&
    [ -f "$T/run/evaluate/results.json" ] && ok "evaluate: TAO's DetectNet_v2 metric, results.json" ||
    { bad "evaluate"; tail -8 "$T/eval.log"; }
$D evaluate -e "$T/spec.txt" -m "$M" --ap_mode integrate >"$T/eval2.log" 2>&1 &&
    $D inference -e "$T/spec.txt" -m "$M" -i "$T/toy/val/images" -o "$T/inf" >"$T/inf.log" 2>&1 &&
    $DEFT detection score -l "$T/toy/val/labels" -p "$T/inf/labels" --ap_mode integrate >"$T/score.log" 2>&1
rc=$?
e=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/eval2.log" | grep -oE "[0-9.]+$")
s=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/score.log" | grep -oE "[0-9.]+$")
n=$(cat "$T/inf/labels"/*.txt 2>/dev/null | wc -l)
[ $rc -eq 0 ] && [ -n "$e" ] && [ "$e" = "$s" ] && [ "$(ls "$T/inf/labels" | wc -l)" -eq 6 ] &&
    [ "$(ls "$T/inf/images_annotated" | wc -l)" -eq 6 ] && [ "$n" -gt 0 ] &&
    ok "evaluate --ap_mode integrate $e == score of inference's KITTI output $s ($n detections); 6 overlays" ||
    { bad "evaluate/inference/score (exit $rc, $e vs $s, $n detections)"; tail -5 "$T/eval2.log" "$T/inf.log" "$T/score.log"; }
awk 'NF != 16 { exit 1 }' "$T/inf/labels"/*.txt && ok "KITTI labels with the score as a 16th field" || bad "label fields"
# TAO's inference spec: classes in the network's order, bbox_handler_config clustering, output_map
cat >"$T/infer.txt" <<SPEC
inferencer_config {
  target_classes: "square"
  target_classes: "block"
  image_width: 160
  image_height: 128
  image_channels: 3
  batch_size: 4
  tlt_config { model: "$M" }
}
bbox_handler_config {
  kitti_dump: true
  disable_overlay: true
  classwise_bbox_handler_config {
    key: "square"
    value { confidence_model: "aggregate_cov" output_map: "red"
      clustering_config { clustering_algorithm: DBSCAN coverage_threshold: 0.005 dbscan_eps: 0.3
        dbscan_min_samples: 1 dbscan_confidence_threshold: 0.1 minimum_bounding_box_height: 4 } }
  }
  classwise_bbox_handler_config {
    key: "default"
    value { confidence_model: "mean_cov"
      clustering_config { clustering_algorithm: DBSCAN coverage_threshold: 0.005 dbscan_eps: 0.3
        dbscan_min_samples: 1 dbscan_confidence_threshold: 0.1 minimum_bounding_box_height: 4 } }
  }
}
SPEC
$D inference -e "$T/infer.txt" -i "$T/toy/val/images" -o "$T/inf2" >"$T/inf2.log" 2>&1 &&
    [ "$(ls "$T/inf2/labels" | wc -l)" -eq 6 ] && [ ! -d "$T/inf2/images_annotated" ] &&
    ! cat "$T/inf2/labels"/*.txt | grep -q "^square " &&
    awk '$1 == "block" && $16 > 1.0 { exit 1 }' "$T/inf2/labels"/*.txt &&
    ok "inference spec: model from tlt_config, output_map renames, mean_cov scores <= 1, no overlay" ||
    { bad "inference spec"; tail -5 "$T/inf2.log"; }
sed 's/target_classes: "block"/target_classes: "other"/' "$T/infer.txt" >"$T/infer_bad.txt"
$D inference -e "$T/infer_bad.txt" -i "$T/toy/val/images" -o "$T/inf3" >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q "class 1 is 'block'" "$T/out" && ok "inference spec classes differing from the model: exit 2" ||
    { bad "class mismatch"; cat "$T/out"; }
# one more epoch from the checkpoint
$D train -e "$T/spec.txt" -r "$T/run" --resume --threads 2 --set training_config.num_epochs=3 >"$T/resume.log" 2>&1 &&
    grep -q "resumed from" "$T/resume.log" && grep -q "^epoch 3/3: loss" "$T/resume.log" &&
    ok "--resume continues to epoch 3" || { bad "resume"; tail -5 "$T/resume.log"; }
finish
