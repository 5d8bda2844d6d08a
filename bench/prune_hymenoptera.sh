#!/bin/sh
# Pruning on ../shared/data/hymenoptera_256 (issue 5, Must show 2): a trained
# model is pruned to at most half its parameters (--target_ratio), retrained
# with the spec it was trained with, pointed at the pruned model
# (train_config.pretrained_model_path), and compared: validation top-1 before
# and after, parameter and FLOPs ratios, and inference latency of both with
# `deft bench infer -m` (batch 1, 1 thread, 3 interleaved runs, median of the medians).
#
#   bench/prune_hymenoptera.sh [BUILD]
#   MODELS="squeezenet_ft resnet18"  baselines in $MODEL_DIR (default /tmp/models):
#     squeezenet_ft.safetensors  specs/hymenoptera_squeezenet_finetune.yaml (from ImageNet)
#     resnet18.safetensors       specs/hymenoptera_resnet18_scratch.yaml
#   RATIO=0.5 THREADS=2; PRUNE_FLAGS_<model>="..." extra prune flags per model
#   (default for squeezenet_ft: -el of the fire squeeze layers, see README)
set -eu
BUILD=${1:-build}
DEFT=$BUILD/deft
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODEL_DIR=${MODEL_DIR:-/tmp/models}
MODELS=${MODELS:-"squeezenet_ft resnet18"}
RATIO=${RATIO:-0.5}
THREADS=${THREADS:-2}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
SQ="features.3.squeeze features.4.squeeze features.5.squeeze features.7.squeeze features.8.squeeze"
SQ="$SQ features.9.squeeze features.10.squeeze features.12.squeeze"
PRUNE_FLAGS_squeezenet_ft=${PRUNE_FLAGS_squeezenet_ft:-"-el $SQ"}
PRUNE_FLAGS_resnet18=${PRUNE_FLAGS_resnet18:-""}
spec_of() { case $1 in squeezenet_ft) echo hymenoptera_squeezenet_finetune ;; resnet18) echo hymenoptera_resnet18_scratch ;;
    *) echo "hymenoptera_$1" ;; esac; }
top1() { $DEFT classification evaluate -e "$1" -m "$2" --threads "$THREADS" 2>&1 | sed -n 's/^top-1 accuracy: \([0-9.]*\).*/\1/p'; }
lat() { $DEFT bench infer -m "$1" --batch 1 --steps 15 --warmup 2 --threads 1 | sed 's/.*"latency_ms": \([0-9.]*\).*/\1/'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf "%-14s %-9s %-9s %-9s %-9s %-10s %-10s %s\n" model top1 pruned retrained params flops "ms(b1)" speedup
for m in $MODELS; do
    base=$MODEL_DIR/$m.safetensors
    [ -f "$base" ] || { echo "$m: $base not found, skipped"; continue; }
    spec=$SRC/specs/$(spec_of "$m").yaml
    eval "flags=\${PRUNE_FLAGS_$m:-}"
    # shellcheck disable=SC2086
    $DEFT classification prune -m "$base" -o "$OUT/$m.pruned.safetensors" -r "$OUT/$m.prune" \
        --target_ratio "$RATIO" $flags >"$OUT/$m.prune.log" 2>&1
    $DEFT classification train -e "$spec" -r "$OUT/$m.retrain" --threads "$THREADS" \
        --set train_config.pretrained_model_path="$OUT/$m.pruned.safetensors" >"$OUT/$m.retrain.log" 2>&1
    rep=$OUT/$m.prune/prune/report.json
    pr=$(sed -n 's/.*"pruning_ratio":[[:space:]]*\([0-9.e-]*\).*/\1/p' "$rep" | head -1)
    fb=$(sed -n 's/.*"flops_before":[[:space:]]*\([0-9.e+]*\).*/\1/p' "$rep" | head -1)
    fa=$(sed -n 's/.*"flops_after":[[:space:]]*\([0-9.e+]*\).*/\1/p' "$rep" | head -1)
    t0=$(top1 "$spec" "$base")
    t1=$(top1 "$spec" "$OUT/$m.pruned.safetensors")
    t2=$(top1 "$spec" "$OUT/$m.retrain/weights/best.safetensors")
    lb="" lp=""
    for i in 1 2 3; do
        lb="$lb $(lat "$base")"
        lp="$lp $(lat "$OUT/$m.retrain/weights/best.safetensors")"
    done
    mb=$(echo "$lb" | median) mp=$(echo "$lp" | median)
    printf "%-14s %-9s %-9s %-9s %-9.4f %-10.4f %-10s %.2fx\n" "$m" "$t0" "$t1" "$t2" "$pr" \
        "$(echo "$fa $fb" | awk '{ print $1 / $2 }')" "$mb/$mp" "$(echo "$mb $mp" | awk '{ print $1 / $2 }')"
done
echo "(top1: validation top-1 of the baseline, the pruned model before retraining, after retraining; logs in $OUT)"
