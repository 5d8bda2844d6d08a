#!/bin/sh
# Accuracy run (not part of make test, hours on a 2-core CPU): Faster R-CNN ResNet-18 trained from
# scratch on BCCD (../shared/data/bccd, train 205 / val 87) with specs/faster_rcnn_resnet18_bccd.txt,
# then evaluated with TAO's metric (all-point AP at IoU 0.5: mAP@0.5 and AP per class) and COCO
# mAP@[.5:.95]; prints the training wall time and seconds per epoch. Results (status.json,
# metrics.csv with the four loss terms, val mAP and RPN recall per epoch, plots/map.svg) under
# ${OUT:-runs/bccd}/faster_rcnn_resnet18_bccd. Run from the repository root.
# Usage: bench/faster_rcnn_bccd.sh [build] [epochs]
BUILD=${1:-build}
EPOCHS=${2:-}
OUT=${OUT:-runs/bccd}
spec=specs/faster_rcnn_resnet18_bccd.txt
dir=$OUT/faster_rcnn_resnet18_bccd
set -e
start=$(date +%s)
"$BUILD/deft" faster_rcnn train -e "$spec" -r "$dir" --overwrite ${EPOCHS:+--set training_config.num_epochs=$EPOCHS}
wall=$(( $(date +%s) - start ))
epochs=$(grep -c '"val"' "$dir/status.json" || true)
echo "faster_rcnn resnet18: train wall time $wall s, $epochs epochs ($(( wall / (epochs > 0 ? epochs : 1) )) s/epoch, validation included)"
"$BUILD/deft" faster_rcnn evaluate -e "$spec" -m "$dir/weights/best.safetensors" -r "$dir" | tee "$dir/eval.txt"
echo "per-class AP@0.5 (TAO all-point):"
awk '/^class/{t=1; next} t && NF==6 {printf "  %-10s %s\n", $1, $2} /^mAP/{print "  " $0; t=0}' "$dir/eval.txt"
"$BUILD/deft" faster_rcnn evaluate -e "$spec" -m "$dir/weights/best.safetensors" --ap_mode coco | grep '^mAP'
