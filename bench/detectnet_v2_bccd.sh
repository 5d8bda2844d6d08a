#!/bin/sh
# Accuracy run (not part of make test): DetectNet_v2-ResNet18 trained from scratch on BCCD
# (../shared/data/bccd, train 205 / val 87) with specs/detectnet_v2_resnet18_bccd.txt, then
# evaluated with TAO's DetectNet_v2 metric (the spec's evaluation_config) and with TAO's
# INTEGRATE mAP@0.5 and COCO mAP@[.5:.95] (the figures bench/yolo_bccd.sh prints, for the
# side-by-side table), per class, with the training wall time.
# DetectNet_v2 reads KITTI folders: runs/bccd_kitti/{train,val}/{images,labels} are linked
# from ImageSets/Main's split first (the spec's paths, relative to the repository root).
# Usage: bench/detectnet_v2_bccd.sh [build] [epochs]   (OUT=runs/bccd by default)
BUILD=${1:-build}
EPOCHS=${2:-}
OUT=${OUT:-runs/bccd}
B=${BCCD:-../shared/data/bccd}
SPEC=specs/detectnet_v2_resnet18_bccd.txt
set -e
B=$(cd "$B" && pwd)
for split in train val; do
    rm -rf runs/bccd_kitti/$split
    mkdir -p runs/bccd_kitti/$split/images runs/bccd_kitti/$split/labels
    while read -r s; do
        ln -s "$B/JPEGImages/$s.jpg" runs/bccd_kitti/$split/images/
        ln -s "$B/labels_kitti/$s.txt" runs/bccd_kitti/$split/labels/
    done <"$B/ImageSets/Main/$split.txt"
done
dir=$OUT/detectnet_v2_resnet18_bccd
start=$(date +%s)
"$BUILD/deft" detectnet_v2 train -e "$SPEC" -r "$dir" --overwrite ${EPOCHS:+--set training_config.num_epochs=$EPOCHS}
wall=$(( $(date +%s) - start ))
echo "detectnet_v2: train wall time $wall s (${EPOCHS:-60} epochs)"
M=$dir/weights/best.safetensors
[ -f "$M" ] || M=$dir/weights/latest.safetensors
"$BUILD/deft" detectnet_v2 evaluate -e "$SPEC" -m "$M" -r "$dir"
"$BUILD/deft" detectnet_v2 evaluate -e "$SPEC" -m "$M" --ap_mode integrate
"$BUILD/deft" detectnet_v2 evaluate -e "$SPEC" -m "$M" --ap_mode coco
echo "detectnet_v2: train wall time $wall s"
