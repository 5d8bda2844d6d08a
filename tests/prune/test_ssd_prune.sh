#!/bin/sh
# SSD prune on the workflow test's data (ssd_fixture.inc): a resnet18 trained 1
# epoch is pruned to half its parameters with the twelve predictor convs whole
# (TAO's excluded heads), the pruned model evaluates and retrains 1 epoch
# through training_config.pruned_model_path (checks: tests/prune/prune_checks.inc).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/ssd_fixture.inc"
. "$SRC/tests/prune/prune_checks.inc"
$DEFT ssd train -e "$T/spec.txt" -r "$T/run" --threads 2 --set training_config.num_epochs=1 >"$T/train.log" 2>&1 ||
    { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
prune_checks ssd "$T/run/weights/latest.safetensors" "$T/spec.txt" \
    "$(for l in 0 1 2 3 4 5; do printf 'ssd_conf_%d ssd_loc_%d ' $l $l; done)" \
    "training_config.pruned_model_path=$T/pruned.safetensors"
finish
