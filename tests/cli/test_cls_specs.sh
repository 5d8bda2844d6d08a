#!/bin/sh
# The real TAO classification specs in ../shared/tao_specs parse with
# --dry_run (exit 0) and resolve to the expected architecture and values.
DEFT=${DEFT_BIN:-build/deft}
S=${DEFT_SOURCE_DIR:-.}/../shared/tao_specs
[ -d "$S" ] || { echo "SKIP: ../shared/tao_specs not present"; exit 77; }
pass=0 fail=0
check() { # spec, then grep patterns that must all appear in the resolved config
    spec=$1; shift
    out=$($DEFT classification train -e "$S/$spec" --dry_run 2>/dev/null)
    rc=$?
    [ $rc -eq 0 ] || { fail=$((fail + 1)); echo "FAIL: $spec: exit $rc"; return; }
    for p in "$@"; do
        if echo "$out" | grep -q -- "$p"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $spec: no '$p'"; fi
    done
    echo "ok   $spec"
}
check classification_tf1_train_resnet18_voc.txt "# architecture: resnet18" "batch_size_per_gpu: 64" "n_epochs: 80" \
    "mixup_alpha: 0.1" "preprocess_mode: caffe" "weight_decay: 5e-05" "learning_rate: 0.006"
check classification_tf1_retrain_resnet18_voc.txt "# architecture: resnet18"
check classification_pyt_train_cats_dogs.yaml "# architecture: fan_small_12_p4_hybrid" "num_classes: 2" "batch_size_per_gpu: 128"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
