#!/bin/sh
# ISBI 2012 membranes (../shared/data/isbi2012_membrane: 30 labelled 512x512 EM images) with
# TAO's own UNet spec (../shared/tao_specs/unet_train_resnet_unet_isbi.txt: resnet18 encoder,
# 320x320 grayscale, batch 3, Adam 1e-4, 50 epochs), split 24/6 by file name (0-23 train,
# 24-29 val); then the vanilla (dynamic) UNet on the same split. Prints val mIoU, the
# membrane class's F1, pixel accuracy, epochs and wall time for each.
# usage: bench/unet_isbi.sh [BUILD] [EPOCHS]    (issue 21, Must-show 3; goal: pixel accuracy
# >= 0.92 and membrane F1 >= 0.80)
#   ARCHS="resnet18 vanilla" (default both); EXTRA="--set k=v ..." is added to every run (e.g.
#   EXTRA="--set dataset_config.augment=true": the spec's own augmentation, off as written)
set -e
BUILD=${1:-build}
EPOCHS=${2:-50}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${DEFT_SHARED_DIR:-$SRC/../shared}
DEFT=$(cd "$BUILD" && pwd)/deft
W=${BENCH_DIR:-/tmp/deft-bench-unet}
rm -rf "$W" && mkdir -p "$W"
for s in train val; do mkdir -p "$W/images/$s" "$W/masks/$s"; done
for i in $(seq 0 29); do
    s=train; [ "$i" -ge 24 ] && s=val
    ln -s "$SHARED/data/isbi2012_membrane/image/$i.png" "$W/images/$s/$i.png"
    ln -s "$SHARED/data/isbi2012_membrane/label/$i.png" "$W/masks/$s/$i.png"
done
SPEC=$SHARED/tao_specs/unet_train_resnet_unet_isbi.txt
sets="--set dataset_config.train_images_path=$W/images/train --set dataset_config.train_masks_path=$W/masks/train
      --set dataset_config.val_images_path=$W/images/val --set dataset_config.val_masks_path=$W/masks/val
      --set dataset_config.test_images_path=$W/images/val --set training_config.epochs=$EPOCHS"
run() { # NAME extra --set flags
    name=$1; shift
    t0=$(date +%s)
    # shellcheck disable=SC2086
    "$DEFT" unet train -e "$SPEC" -r "$W/$name" $sets "$@" >"$W/$name.log" 2>&1
    t1=$(date +%s)
    # shellcheck disable=SC2086
    "$DEFT" unet evaluate -e "$SPEC" -r "$W/$name" $sets "$@" >"$W/$name.eval" 2>&1
    /usr/bin/python3 - "$W/$name/evaluate/metrics.json" "$name" "$EPOCHS" "$((t1 - t0))" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
fg = m["classes"]["foreground"]
print("%-22s val mIoU %.4f  membrane F1 %.4f  pixel accuracy %.4f  (%s epochs, %s s)" %
      (sys.argv[2], m["mIoU"], fg["f1"], m["pixel_accuracy"], sys.argv[3], sys.argv[4]))
PY
}
ARCHS=${ARCHS:-resnet18 vanilla}
# shellcheck disable=SC2086
case " $ARCHS " in *" resnet18 "*) run resnet18_unet $EXTRA ;; esac
# shellcheck disable=SC2086
case " $ARCHS " in *" vanilla "*) run vanilla_unet $EXTRA --set model_config.arch=vanilla_unet_dynamic --set model_config.use_batch_norm=true ;; esac
