#!/bin/sh
# Faster R-CNN through the task layer on a tiny generated KITTI dataset
# (coloured rectangles, 2 classes, 208x160 PNGs): `train` 2 epochs writes the
# shared loop's outputs with TAO's four loss terms, val mAP and RPN recall;
# `evaluate` prints TAO's mAP and the RPN recall, and --ap_mode coco the COCO
# one; `inference` writes KITTI labels with scores, overlays and JSON, and
# `deft detection score` of its labels gives exactly the mAP `evaluate`
# printed and as many detections (one proposal/decode/NMS/letterbox path
# everywhere); the loss falls; bad input exits 2 (export --data_type int8
# without calibration images among it; the export itself:
# test_frcnn_export.sh).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/frcnn_fixture.inc"
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
expect "export --data_type int8 without calibration images" "needs calibration images" faster_rcnn export -m "$M" -o "$T/x.onnx" --data_type int8
expect "typo in the spec" "typo.txt:[0-9]+:[0-9]+: .*rpn_mini_bach" faster_rcnn train -e "$T/typo.txt" -r "$T/r2"
finish
