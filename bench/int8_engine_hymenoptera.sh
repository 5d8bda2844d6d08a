#!/bin/sh
# int8 engines on hymenoptera (issue 22, Must show 2, accuracy): for each
# trained classifier, an fp32 engine and an int8 engine calibrated on the
# training photos (`deft model convert --precision int8 --cal_image_dir
# train`, each calibrator, 10 x 16 images drawn at random), then top-1 of both on the
# 153 validation photos (deft's preprocessing, batch = the whole set).
# Models missing from $OUT are trained first from scratch with
# specs/hymenoptera_<arch>_scratch.yaml cut to $EPOCHS epochs (lr / 10 after
# two thirds), under nice: a quick classifier is enough to compare fp32 with
# int8 on it (the README's 15-epoch recipe gives ~0.70).
#   sh bench/int8_engine_hymenoptera.sh        env: OUT=/tmp/deft_int8_models EPOCHS=6
#                                              ARCHS="resnet18 mobilenet_v2" THREADS=2
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
DATA=../shared/data/hymenoptera_256
OUT=${OUT:-/tmp/deft_int8_models}
EPOCHS=${EPOCHS:-6}
ARCHS=${ARCHS:-"resnet18 mobilenet_v2"}
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
[ -d "$DATA/val" ] || { echo "no $DATA"; exit 77; }
mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
acc() { # acc LOGITS.npy LIST.txt -> top-1 in percent (class = the photo's folder, names sorted)
    /usr/bin/python3 -c "
import sys, numpy as np
p = np.load(sys.argv[1]); paths = open(sys.argv[2]).read().split()
names = sorted({q.split('/')[-2] for q in paths})
y = np.array([names.index(q.split('/')[-2]) for q in paths])
print('%.2f' % (100.0 * float((p.argmax(1) == y).mean())))" "$1" "$2"
}
echo "cpu: $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1 /proc/loadavg)"
for a in $ARCHS; do
    m=$OUT/$a.safetensors
    if [ ! -f "$m" ]; then
        step=$((EPOCHS * 2 / 3))
        echo "$a: training $EPOCHS epochs from scratch into $OUT/$a (nice)"
        nice -n 10 "$DEFT" classification train -e specs/hymenoptera_${a}_scratch.yaml -r "$OUT/$a" --threads "$THREADS" \
            --set train_config.n_epochs=$EPOCHS --set train_config.lr_config.step.step_size=$step \
            --set train_config.checkpoint_interval=$EPOCHS >"$OUT/$a.train.log" 2>&1 || { echo "$a: training failed"; tail -3 "$OUT/$a.train.log"; continue; }
        cp "$OUT/$a/weights/best.safetensors" "$m" 2>/dev/null || cp "$OUT/$a/weights/latest.safetensors" "$m" || continue
    fi
    "$DEFT" model preprocess -m "$m" -i "$DATA/val" -o "$T/x.npy" --list "$T/list.txt" >/dev/null || exit 1
    n=$(wc -w <"$T/list.txt")
    "$DEFT" model convert -m "$m" -o "$T/f.engine" --batch "$n" >/dev/null &&
        "$DEFT" model run -m "$T/f.engine" -i "$T/x.npy" -o "$T/f.npy" >/dev/null || { echo "$a: fp32 engine failed"; continue; }
    f=$(acc "$T/f.npy" "$T/list.txt")
    for c in entropy minmax percentile; do
        "$DEFT" model convert -m "$m" -o "$T/q.engine" --batch "$n" --precision int8 --cal_image_dir "$DATA/train" \
            --batches 10 --batch_size 16 --calibrator $c >/dev/null &&
            "$DEFT" model run -m "$T/q.engine" -i "$T/x.npy" -o "$T/q.npy" >/dev/null || { echo "$a $c: int8 engine failed"; continue; }
        q=$(acc "$T/q.npy" "$T/list.txt")
        printf "%-13s %-10s val %3d photos   top-1 fp32 %6s   int8 %6s   delta %+.2f points\n" "$a" $c "$n" "$f" "$q" \
            "$(echo "$q - $f" | bc)"
    done
done
