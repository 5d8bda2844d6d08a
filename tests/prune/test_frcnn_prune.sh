#!/bin/sh
# Faster R-CNN prune on the workflow test's data (frcnn_fixture.inc): a resnet:10
# trained 1 epoch is pruned to half its parameters with the RPN and RCNN output
# layers whole (TAO's excluded heads); the RCNN body (layer4, on the RoIs) is
# pruned too; the pruned model evaluates and retrains 1 epoch through
# training_config.retrain_pruned_model (checks: tests/prune/prune_checks.inc).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/frcnn_fixture.inc"
. "$SRC/tests/prune/prune_checks.inc"
$DEFT faster_rcnn train -e "$T/spec.txt" -r "$T/run" --threads 2 --set training_config.num_epochs=1 >"$T/train.log" 2>&1 ||
    { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
prune_checks faster_rcnn "$T/run/weights/latest.safetensors" "$T/spec.txt" \
    "rpn_out_class rpn_out_regress dense_class_td dense_regress_td" \
    "training_config.retrain_pruned_model=$T/pruned.safetensors"
grep -qE "^layer4\.0\.conv1 +conv +512 -> [0-9]+ " "$T/prune.log" &&
    ! grep -qE "^layer4\.0\.conv1 +conv +512 -> 512 " "$T/prune.log" && ok "the RCNN body on the RoIs loses filters too" ||
    bad "layer4 not pruned: $(grep layer4 "$T/prune.log")"
finish
