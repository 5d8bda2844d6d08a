#!/bin/sh
# Is data loading hidden behind compute? Training throughput of resnet18 at
# 224x224, batch 16, with real JPEG loading + augmentation (hymenoptera_256,
# random-resized-crop + flip) against `deft bench train` on synthetic input,
# same size/batch/threads, measured in one run. Prints the ratio.
BUILD=${1:-build}
DEFT=$BUILD/deft
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
DATA=$(dirname "$0")/../../shared/data/hymenoptera_256
[ -d "$DATA" ] || { echo "needs ../shared/data/hymenoptera_256"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
syn=$($DEFT bench train --arch resnet18 --size 224 --batch 16 --threads $THREADS --steps 10 --warmup 2 | sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p')
$DEFT classification train -e "$(dirname "$0")/../specs/hymenoptera_resnet18_scratch.yaml" -r "$T/run" --threads $THREADS \
    --set train_config.n_epochs=3 --set 'train_config.val_dataset_path=""' --set train_config.checkpoint_interval=100 >/dev/null || exit 1
# epochs 2 and 3 (epoch 1 includes start-up): 15 steps x 16 images each
real=$(/usr/bin/python3 -c "
import json; r=[json.loads(l) for l in open('$T/run/status.json')]
print(round(2*15*16/(r[2]['time']-r[0]['time']), 2))")
echo "synthetic input (deft bench train): $syn img/s"
echo "real JPEGs + augmentation (classification train): $real img/s"
awk "BEGIN{printf \"ratio real/synthetic: %.3f\n\", $real/$syn}"
