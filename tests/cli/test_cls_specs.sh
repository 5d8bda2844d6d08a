#!/bin/sh
# The real TAO classification specs in ../shared/tao_specs parse with
# --dry_run and resolve to the expected architecture and values. Their data
# paths are TAO's container paths, so a real run would stop: the dry run says
# so and exits 2 (it exits 0 only when a real run would start, checked with
# the paths pointed at data that exists).
DEFT=${DEFT_BIN:-build/deft}
SHARED=${DEFT_SHARED_DIR:-${DEFT_SOURCE_DIR:-.}/../shared}
S=$SHARED/tao_specs
H=$SHARED/data/hymenoptera_256
[ -d "$S" ] || { echo "SKIP: ../shared/tao_specs not present"; exit 77; }
pass=0 fail=0
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
check() { # spec, expected exit, then grep patterns that must all appear in the resolved config and messages
    spec=$1 want=$2; shift 2
    out=$($DEFT classification train -e "$S/$spec" --dry_run $SETS 2>"$T/err"; echo "rc=$?")
    out="$out
$(cat "$T/err")"
    echo "$out" | grep -q "^rc=$want\$" || { fail=$((fail + 1)); echo "FAIL: $spec: not exit $want"; echo "$out" | tail -5; return; }
    f0=$fail
    for p in "$@"; do
        if echo "$out" | grep -q -- "$p"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $spec: no '$p'"; fi
    done
    [ $fail -eq $f0 ] && { pass=$((pass + 1)); echo "ok   $spec: exit $want"; }
}
STOP="dry run: a real run would stop here"
check classification_tf1_train_resnet18_voc.txt 2 "# architecture: resnet18" "batch_size_per_gpu: 64" "n_epochs: 80" \
    "mixup_alpha: 0.1" "preprocess_mode: caffe" "weight_decay: 5e-05" "learning_rate: 0.006" "does not exist" "$STOP"
check classification_tf1_retrain_resnet18_voc.txt 2 "# architecture: resnet18" "$STOP"
check classification_pyt_train_cats_dogs.yaml 2 "# architecture: fan_small_12_p4_hybrid" "num_classes: 2" \
    "batch_size_per_gpu: 128" "unknown architecture 'fan_small_12_p4_hybrid'" "$STOP"
if [ -d "$H/train" ]; then # the same TAO spec with its paths at data that exists: a real run would start
    SETS="--set train_config.train_dataset_path=$H/train --set train_config.val_dataset_path=$H/val \
--set train_config.pretrained_model_path= --set model_config.n_layers=18"
    check classification_tf1_train_resnet18_voc.txt 0 "# architecture: resnet18" "n_epochs: 80"
    SETS=
else
    echo "SKIP (part): ../shared/data/hymenoptera_256 not present"
    [ -n "${DEFT_SKIP_LOG:-}" ] && echo "test_cls_specs: ../shared/data/hymenoptera_256 not present" >>"$DEFT_SKIP_LOG"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
