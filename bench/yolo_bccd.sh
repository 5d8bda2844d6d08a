#!/bin/sh
# Accuracy run (not part of make test): YOLOv4-tiny and YOLOv4-ResNet18 trained from scratch on
# BCCD (../shared/data/bccd, train 205 / val 87) with specs/yolo_v4_*_bccd.txt, then evaluated
# with TAO's INTEGRATE mAP@0.5 and COCO mAP@[.5:.95]. Results (status.json, metrics.csv,
# plots/map.png: val mAP against epochs) under ${OUT:-runs/bccd}/<net>.
# Usage: bench/yolo_bccd.sh [build] [epochs]
BUILD=${1:-build}
EPOCHS=${2:-}
OUT=${OUT:-runs/bccd}
set -e
for net in yolo_v4_tiny:yolo_v4_tiny_bccd.txt yolo_v4:yolo_v4_resnet18_bccd.txt; do
    n=${net%%:*} spec=specs/${net#*:}
    dir=$OUT/${spec##*/}; dir=${dir%.txt}
    start=$(date +%s)
    "$BUILD/deft" $n train -e "$spec" -r "$dir" ${EPOCHS:+--set training_config.num_epochs=$EPOCHS}
    echo "$n: train wall time $(( $(date +%s) - start )) s"
    "$BUILD/deft" $n evaluate -e "$spec" -m "$dir/weights/best.safetensors" -r "$dir"
    "$BUILD/deft" $n evaluate -e "$spec" -m "$dir/weights/best.safetensors" --ap_mode coco
done
