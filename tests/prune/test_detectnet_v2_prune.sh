#!/bin/sh
# DetectNet_v2 prune on the workflow test's toy data (tests/ref/dnv2_toy_data.py,
# tests/data/detectnet_v2_toy.txt): a resnet10 trained 1 epoch is pruned to half
# its parameters with output_cov / output_bbox whole (TAO's excluded heads), the
# pruned model evaluates and retrains 1 epoch through model_config.load_graph +
# pretrained_model_file (checks: tests/prune/prune_checks.inc).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/prune/prune_checks.inc"
/usr/bin/python3 -c "import numpy, cv2" 2>/dev/null || { echo "SKIP: python3 numpy / cv2 not available"; exit 77; }
/usr/bin/python3 "$SRC/tests/ref/dnv2_toy_data.py" "$T/toy" 16 6 || { bad "toy data"; finish; exit 1; }
sed "s|@TOY@|$T/toy|g" "$SRC/tests/data/detectnet_v2_toy.txt" >"$T/spec.txt"
$DEFT detectnet_v2 train -e "$T/spec.txt" -r "$T/run" --threads 2 --set training_config.num_epochs=1 >"$T/train.log" 2>&1 ||
    { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
prune_checks detectnet_v2 "$T/run/weights/latest.safetensors" "$T/spec.txt" "output_cov output_bbox" \
    "model_config.pretrained_model_file=$T/pruned.safetensors" model_config.load_graph=true
finish
