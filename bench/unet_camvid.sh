#!/bin/sh
# CamVid (../shared/data/camvid_segnet_subset: 184 train / 101 val) with deft's ResNet-18 UNet
# (specs/unet_resnet18_camvid.txt) next to torchvision's LR-ASPP trained by PyTorch with the same
# epochs, input size (320x240) and augmentation (bench/camvid_torch.py), one after the other on
# this machine: val mIoU over the 11 classes, per-class IoU, seconds per epoch.
# usage: bench/unet_camvid.sh [BUILD] [EPOCHS] [lraspp|fcn]   (issue 21, Must-show 4: goal deft's
# mIoU within 2 points of the peer's, with training faster per epoch)
set -e
BUILD=${1:-build}
EPOCHS=${2:-30}
PEER=${3:-lraspp}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${DEFT_SHARED_DIR:-$SRC/../shared}
W=${BENCH_DIR:-/tmp/deft-bench-camvid}
rm -rf "$W" && mkdir -p "$W"
DEFT=$(cd "$BUILD" && pwd)/deft
STEPS=$((EPOCHS * 23))
"$DEFT" unet train -e "$SRC/specs/unet_resnet18_camvid.txt" -r "$W/deft" --threads 2 \
    --set training_config.epochs="$EPOCHS" --set training_config.lr_scheduler.cosine_decay.decay_steps=$STEPS \
    >"$W/deft.log" 2>&1
"$DEFT" unet evaluate -e "$SRC/specs/unet_resnet18_camvid.txt" -r "$W/deft" --threads 2 >"$W/deft.eval" 2>&1
grep "^epoch .*/$EPOCHS:" "$W/deft.log" | tail -3
tail -16 "$W/deft.eval"
/usr/bin/python3 "$SRC/bench/camvid_torch.py" "$SHARED/data/camvid_segnet_subset" "$EPOCHS" "$PEER" 2 | tee "$W/peer.log" | tail -3
