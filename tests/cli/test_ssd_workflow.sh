#!/bin/sh
# SSD through the task layer on a tiny generated KITTI dataset (coloured boxes on
# noise, 16 train / 6 val images at 128x96): --dry_run checks the priors; training
# 2 epochs writes the shared loop's outputs with SSD's loss terms and val mAP;
# evaluate's mAP equals `deft detection score` of inference's KITTI output (one
# decode/NMS/letterbox path everywhere); --ap_mode coco names its definition;
# what is not finished (dssd) exits 2 saying so (prune: test_ssd_prune.sh).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/ssd_fixture.inc"
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
expect2 "a spec given as the model" "not a model file deft reads" ssd evaluate -e "$T/spec.txt" -m "$T/spec.txt"
sed 's/^ssd_config {/dssd_config {/' "$T/spec.txt" >"$T/dssd.txt"
expect2 "dssd not finished" "DSSD is not finished yet" ssd train -e "$T/dssd.txt" -r "$T/r2"
finish
