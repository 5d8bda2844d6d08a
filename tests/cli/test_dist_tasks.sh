#!/bin/sh
# Data-parallel training of the detection and segmentation tasks on MPI
# (issue 23; classification: test_dist_train.sh): `mpirun -np 2 deft
# yolo_v4 train` with batch 4 per rank against one process with batch 8, the
# same seed, YOLOv4-tiny at 128x128 on 8 BCCD photos with mosaic and the
# other augmentations on, batch norm frozen, SGD, one step: the ranks'
# batches together are the one process's (every draw keyed by the global
# position) and the weights agree within 1e-4 relative (worst tensor printed;
# one process at 1 and 2 threads: ~3e-6; another seed: ~4; a second step is
# not compared: YOLO's matching thresholds turn rounding into ~5e-2 there,
# in one process too); rank 0 alone writes the results folder and validates
# (the val mAP line once, the ranks' figures equal); SSD and Faster R-CNN
# finish on 2 ranks too; DetectNet_v2 refuses in one line; a ResNet-18 UNet
# (frozen batch norm statistics, Adam with a large epsilon) on 4 ISBI images, 2 ranks x 2
# against 1 x 4, one step:
# the same weights within 1e-4 and rank 0's validation figures. Skips
# without mpirun, an MPI build or the data.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
command -v mpirun >/dev/null || { echo "SKIP: mpirun not installed (openmpi-bin)"; exit 77; }
$DEFT --version | grep -q "data parallel: MPI" || { echo "SKIP: deft built without MPI (libopenmpi-dev)"; exit 77; }
B=$SHARED/data/bccd
[ -d "$B/JPEGImages" ] || { echo "SKIP: ../shared/data/bccd not present"; exit 77; }
/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy missing"; exit 77; }
B=$(cd "$B" && pwd)
head -8 "$B/ImageSets/Main/train.txt" >"$T/train.txt"
head -8 "$B/ImageSets/Main/val.txt" >"$T/val.txt"

yolo_spec() { # $1: batch per rank
    sed -e "s|\(\.\./\)*shared/data/bccd|$B|g" -e "s|$B/ImageSets/Main/train.txt|$T/train.txt|" \
        -e "s|$B/ImageSets/Main/val.txt|$T/val.txt|" -e "s|batch_size_per_gpu: 8|batch_size_per_gpu: $1|" \
        -e "s|num_epochs: 60|num_epochs: 1|" -e "s|freeze_bn: false|freeze_bn: true|" \
        -e "s|output_width: 416|output_width: 128|" -e "s|output_height: 320|output_height: 128|" \
        "$SRC/specs/yolo_v4_tiny_bccd.txt" |
        /usr/bin/python3 -c 'import re, sys
s = sys.stdin.read()
print(re.sub(r"optimizer \{.*?\n  \}\n", "optimizer {\n    sgd {\n      momentum: 0.9\n    }\n  }\n", s, flags=re.S), end="")'
}
yolo_spec 8 >"$T/one.txt"
yolo_spec 4 >"$T/two.txt"
grep -q "sgd" "$T/two.txt" && grep -q "batch_size_per_gpu: 4" "$T/two.txt" ||
    { bad "could not write the test's spec"; finish; exit 1; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export LSAN_OPTIONS="suppressions=$SRC/tests/harness/lsan_mpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,tcp -x OMP_NUM_THREADS=1 -x LSAN_OPTIONS"

OMP_NUM_THREADS=1 $DEFT yolo_v4_tiny train -e "$T/one.txt" -r "$T/one" >"$T/one.log" 2>&1
rc1=$?
OMP_NUM_THREADS=1 $MPIRUN -np 2 "$DEFT" yolo_v4_tiny train -e "$T/two.txt" -r "$T/two" >"$T/two.log" 2>&1
rc2=$?
[ $rc1 -eq 0 ] && ok "1-process yolo_v4 training finished" || { bad "1 process exit $rc1"; cat "$T/one.log"; }
[ $rc2 -eq 0 ] && ok "mpirun -np 2 yolo_v4 training finished" || { bad "mpirun -np 2 exit $rc2"; cat "$T/two.log"; }
grep -q "data parallel: 2 ranks x batch 4 = global batch 8" "$T/two.log" &&
    ok "the global batch is printed" || bad "no global-batch line: $(head -20 "$T/two.log")"
n=$(grep -c "^epoch 1/1: .*val mAP" "$T/two/deft.log" 2>/dev/null)
[ "$n" = 1 ] && ok "rank 0 alone validates and writes deft.log (one epoch line)" || bad "epoch lines in deft.log: $n"
[ "$(ls -d "$T"/two*/ | wc -l)" = 1 ] && [ -f "$T/two/weights/latest.safetensors" ] &&
    ok "one results folder, rank 0's checkpoint" || bad "results folders: $(ls "$T")"
v1=$(grep -o 'val loss [0-9.]*' "$T/one/deft.log" | tail -1 | cut -d' ' -f3)
v2=$(grep -o 'val loss [0-9.]*' "$T/two/deft.log" | tail -1 | cut -d' ' -f3)
if [ -n "$v1" ] && [ -n "$v2" ] && awk "BEGIN {d = $v1 - $v2; exit !(d * d <= (1e-4 * $v1) ^ 2)}"; then
    ok "rank 0's validation matches one process's (val loss $v2 against $v1)"
else bad "val loss: 2 ranks '$v2', 1 process '$v1'"; fi

# the final weights, per tensor max|a-b| / max|b| (tensors at rounding level,
# max|b| < 1e-6, compared absolutely)
/usr/bin/python3 "$SRC/tests/harness/weights_diff.py" "$T/two/weights/latest.safetensors" \
    "$T/one/weights/latest.safetensors" >"$T/cmp.txt" 2>&1
cat "$T/cmp.txt"
worst=$(awk '/^worst/ {print $2}' "$T/cmp.txt")
if [ -n "$worst" ] && awk "BEGIN {exit !($worst <= 1e-4)}" && grep -q '"step": 1' "$T/cmp.txt"; then
    ok "2 ranks x 4 == 1 process x 8 after a step: worst tensor $(awk '/^worst/ {print $3, $2}' "$T/cmp.txt") relative"
else bad "final weights differ: $(cat "$T/cmp.txt")"; fi

# SSD and Faster R-CNN (the shared detection loop) on 2 ranks: they finish
for net in ssd faster_rcnn; do
    sed -e "s|\(\.\./\)*shared/data/bccd|$B|g" -e "s|$B/ImageSets/Main/train.txt|$T/train.txt|" \
        -e "s|$B/ImageSets/Main/val.txt|$T/val.txt|" "$SRC/specs/${net}_resnet18_bccd.txt" >"$T/$net.txt"
    OMP_NUM_THREADS=1 $MPIRUN -np 2 "$DEFT" $net train -e "$T/$net.txt" -r "$T/$net" \
        --set training_config.num_epochs=1 --set training_config.batch_size_per_gpu=4 \
        >"$T/$net.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q "data parallel: 2 ranks" "$T/$net.log" && [ -f "$T/$net/weights/latest.safetensors" ]; then
        ok "$net: mpirun -np 2 training finished"
    else bad "$net on 2 ranks: exit $rc: $(tail -5 "$T/$net.log")"; fi
done

# DetectNet_v2: refused in one line (its cost auto-weighting is per process)
OMP_NUM_THREADS=1 $MPIRUN -np 2 "$DEFT" detectnet_v2 train -e "$SRC/specs/detectnet_v2_resnet18_bccd.txt" \
    -r "$T/dnv2" >"$T/dnv2.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "data-parallel training (mpirun, --gpus N) of DetectNet_v2 is not finished" "$T/dnv2.log" &&
    ok "detectnet_v2 on 2 ranks is refused in one line" || bad "detectnet_v2 on 2 ranks: exit $rc: $(tail -3 "$T/dnv2.log")"
# UNet: 2 ranks x 2 against 1 process x 4 on 4 ISBI images at 64x64, one step. Adam (TAO's UNet
# has no other optimizer) with epsilon 0.01: its first step is lr * g / (|g| + eps), which at
# the spec's 1e-8 turns the rounding of near-zero gradients into whole steps (1 against 2
# threads in one process: 5.7e-4); at 0.01: 4.6e-6
I=$SHARED/data/isbi2012_membrane
if [ -d "$I/image" ]; then
    for s in train val; do mkdir -p "$T/isbi/images/$s" "$T/isbi/masks/$s"; done
    for i in 0 1 2 3; do
        ln -s "$I/image/$i.png" "$T/isbi/images/train/$i.png"; ln -s "$I/label/$i.png" "$T/isbi/masks/train/$i.png"
    done
    for i in 24 25; do
        ln -s "$I/image/$i.png" "$T/isbi/images/val/$i.png"; ln -s "$I/label/$i.png" "$T/isbi/masks/val/$i.png"
    done
    sets="--set dataset_config.train_images_path=$T/isbi/images/train --set dataset_config.train_masks_path=$T/isbi/masks/train
          --set dataset_config.val_images_path=$T/isbi/images/val --set dataset_config.val_masks_path=$T/isbi/masks/val
          --set dataset_config.test_images_path=$T/isbi/images/val --set training_config.epochs=1
          --set model_config.model_input_width=64 --set model_config.model_input_height=64
          --set model_config.freeze_bn=true --set dataset_config.augment=true
          --set training_config.optimizer.adam.epsilon=0.01"
    SPEC=$SHARED/tao_specs/unet_train_resnet_unet_isbi.txt
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 $DEFT unet train -e "$SPEC" -r "$T/u1" $sets --set training_config.batch_size=4 >"$T/u1.log" 2>&1
    rc1=$?
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 $MPIRUN -np 2 "$DEFT" unet train -e "$SPEC" -r "$T/u2" $sets --set training_config.batch_size=2 \
        >"$T/u2.log" 2>&1
    rc2=$?
    if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && grep -q "data parallel: 2 ranks x batch 2 = global batch 4" "$T/u2.log"; then
        ok "unet: mpirun -np 2 training finished"
        /usr/bin/python3 "$SRC/tests/harness/weights_diff.py" --tiny 0 "$T/u2/weights/latest.safetensors" \
            "$T/u1/weights/latest.safetensors" >"$T/ucmp.txt" 2>&1
        cat "$T/ucmp.txt"
        worst=$(awk '/^worst/ {print $2}' "$T/ucmp.txt")
        if [ -n "$worst" ] && awk "BEGIN {exit !($worst <= 1e-4)}" && grep -q '"step": 1' "$T/ucmp.txt"; then
            ok "unet: 2 ranks x 2 == 1 process x 4 after a step: worst tensor $(awk '/^worst/ {print $3, $2}' "$T/ucmp.txt")"
        else bad "unet: final weights differ: $(cat "$T/ucmp.txt")"; fi
        u1=$(grep -o 'val mIoU [0-9.]*' "$T/u1/deft.log" | head -1)
        u2=$(grep -o 'val mIoU [0-9.]*' "$T/u2/deft.log" | head -1)
        [ -n "$u1" ] && [ "$u1" = "$u2" ] && ok "unet: rank 0's validation equals one process's ($u2)" ||
            bad "unet validation: 2 ranks '$u2', 1 process '$u1'"
    else
        bad "unet on 2 ranks: exits $rc1 / $rc2: $(tail -3 "$T/u1.log") $(tail -5 "$T/u2.log")"
    fi
else
    skip_part "../shared/data/isbi2012_membrane not present: the UNet part"
fi
finish
