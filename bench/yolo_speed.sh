#!/bin/sh
# Must-show 6 (issue 18): YOLOv4-tiny and YOLOv4-resnet18 speed, deft against the same
# networks in PyTorch (tests/ref/yolo_v4_torch.py, the definition test_yolo_model checks
# deft's outputs against), CPU, same threads, measured in one run:
#   training img/s: batch 8, 416x416, one SGD step on an L2 loss of every head against zeros;
#   inference latency: batch 1, 416x416, eval mode.
# usage: bench/yolo_speed.sh [BUILD_DIR]   (THREADS=2 STEPS=3 WARMUP=1 CLASSES=3 by default)
BUILD=${1:-build}
DEFT=$BUILD/deft
HERE=$(dirname "$0")
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
WARMUP=${WARMUP:-1}
CLASSES=${CLASSES:-3}
export OMP_NUM_THREADS=$THREADS
[ -x "$DEFT" ] || { echo "build deft first ($DEFT)"; exit 1; }
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
for arch in yolo_v4_tiny yolo_v4_resnet18; do
    for mode in train infer; do
        b=8; [ $mode = infer ] && b=1
        d=$($DEFT bench $mode --arch $arch --size 416 --batch $b --threads $THREADS --steps $STEPS \
            --warmup $WARMUP --classes $CLASSES) || exit 1
        p=$(/usr/bin/python3 "$HERE/yolo_torch_bench.py" $mode $arch 416 $b $STEPS $WARMUP $THREADS $CLASSES) || exit 1
        echo "$d"
        echo "$p"
        if [ $mode = train ]; then
            awk -v a=$arch -v d="$(echo "$d" | field images_per_s)" -v p="$(echo "$p" | field images_per_s)" \
                'BEGIN{printf "%s train (batch 8): deft %.2f img/s, PyTorch %.2f img/s -> %.2fx\n", a, d, p, d/p}'
        else
            awk -v a=$arch -v d="$(echo "$d" | field latency_ms)" -v p="$(echo "$p" | field latency_ms)" \
                'BEGIN{printf "%s inference (batch 1): deft %.1f ms, PyTorch %.1f ms -> %.2fx faster\n", a, d, p, p/d}'
        fi
    done
done
