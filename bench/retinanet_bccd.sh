#!/bin/sh
# Accuracy run (not part of make test): RetinaNet-ResNet18 trained from scratch on BCCD
# (../shared/data/bccd, train 205 / val 87) with specs/retinanet_resnet18_bccd.txt, then evaluated with
# TAO's INTEGRATE mAP@0.5 (per-class AP printed by evaluate) and COCO mAP@[.5:.95]; the training
# wall time and s/epoch are printed. Results (status.json, metrics.csv, plots/map.svg) under
# ${OUT:-runs/bccd}/retinanet_resnet18_bccd.
# Usage: bench/retinanet_bccd.sh [build] [epochs]
BUILD=${1:-build}
EPOCHS=${2:-}
OUT=${OUT:-runs/bccd}
set -e
spec=specs/retinanet_resnet18_bccd.txt
dir=$OUT/retinanet_resnet18_bccd
start=$(date +%s)
"$BUILD/deft" retinanet train -e "$spec" -r "$dir" --overwrite ${EPOCHS:+--set training_config.num_epochs=$EPOCHS}
wall=$(( $(date +%s) - start ))
epochs=${EPOCHS:-$(sed -n 's/^ *num_epochs: *\([0-9]*\).*/\1/p' "$spec" | head -1)}
echo "retinanet resnet18: train wall time $wall s for $epochs epochs ($(( wall / epochs )) s/epoch, validation included)"
"$BUILD/deft" retinanet evaluate -e "$spec" -m "$dir/weights/best.safetensors" -r "$dir"
"$BUILD/deft" retinanet evaluate -e "$spec" -m "$dir/weights/best.safetensors" --ap_mode coco
