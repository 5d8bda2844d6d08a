#!/bin/sh
# CamVid (../shared/data/camvid_segnet_subset: 184 train / 101 val street scenes, 11 classes +
# Unlabelled ignored) with specs/unet_resnet18_camvid.txt: a ResNet-18 UNet from scratch at 320x240,
# next to torchvision's LR-ASPP MobileNetV3-Large (bench/unet_camvid_peer.py) trained with the
# same epochs, input size, batch, optimizer, schedule and augmentation. Then the deployment path
# on the trained model: float and INT8 QDQ ONNX in onnxruntime on val (mIoU of each), and TAO
# pruning to <= 50 % of the parameters, retrained, with its mIoU and `deft bench infer` latency.
# usage: bench/unet_camvid.sh [BUILD] [EPOCHS] [RETRAIN_EPOCHS]     (issue 21, Must-show 4, 5, 6)
#   STAGES="train peer onnx prune speed" (default all; speed: SPEED_EPOCHS (1) of deft and of each
#   of SPEED_PEERS (lraspp fcn), then SPEED_STEPS (3) steps of each of SPEED_STEP_PEERS (unet_resnet18:
#   the same network in PyTorch, too slow here for a whole epoch), back to back on a quiet machine, for the per-epoch time; the long runs' times suffer whatever else runs); PEER_ARCH=lraspp|fcn; BENCH_DIR (default
#   /tmp/deft-bench-camvid). Goal: deft's val mIoU within 2 points of the peer's, faster per epoch;
#   INT8 within 1 point of float; pruned within 2 points of unpruned.
set -e
BUILD=${1:-build}
EPOCHS=${2:-30}
RETRAIN=${3:-15}
STAGES=${STAGES:-train peer onnx prune speed}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${DEFT_SHARED_DIR:-$SRC/../shared}
DATA=$SHARED/data/camvid_segnet_subset
DEFT=$(cd "$BUILD" && pwd)/deft
W=${BENCH_DIR:-/tmp/deft-bench-camvid}
SPEC=$SRC/specs/unet_resnet18_camvid.txt
[ -d "$DATA/train/images" ] || { echo "unet_camvid: $DATA not found" >&2; exit 2; }
mkdir -p "$W"
PY=/usr/bin/python3
sets() { # EPOCHS: the spec's paths into ../shared, the epochs and the cosine decay over all steps
    echo "--set dataset_config.train_images_path=$DATA/train/images --set dataset_config.train_masks_path=$DATA/train/labels
      --set dataset_config.val_images_path=$DATA/val/images --set dataset_config.val_masks_path=$DATA/val/labels
      --set dataset_config.test_images_path=$DATA/test/images --set training_config.epochs=$1
      --set training_config.lr_scheduler.cosine_decay.decay_steps=$(($1 * 23))"
}
summary() { # metrics.json label seconds_per_epoch
    $PY - "$@" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
iou = m["iou"] if "iou" in m else {c: v["iou"] for c, v in m["classes"].items()}
print("%-34s val mIoU %.4f  pixel acc %.4f  %s s/epoch" % (sys.argv[2], m["mIoU"], m["pixel_accuracy"], sys.argv[3]))
print("  " + "  ".join("%s %s" % (c, "-" if v is None else "%.3f" % v) for c, v in iou.items()))
PY
}
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

if has train; then
    t0=$(date +%s)
    # shellcheck disable=SC2046
    "$DEFT" unet train -e "$SPEC" -r "$W/deft" --overwrite $(sets "$EPOCHS") >"$W/deft.log" 2>&1
    echo $(( ($(date +%s) - t0) / EPOCHS )) >"$W/deft.spe"
    # shellcheck disable=SC2046
    "$DEFT" unet evaluate -e "$SPEC" -r "$W/deft" $(sets "$EPOCHS") >"$W/deft.eval" 2>&1
fi
[ -f "$W/deft/evaluate/metrics.json" ] && summary "$W/deft/evaluate/metrics.json" "deft resnet18 UNet ($EPOCHS ep)" "$(cat "$W/deft.spe")"

if has peer; then
    $PY "$SRC/bench/unet_camvid_peer.py" "$DATA" --arch "${PEER_ARCH:-lraspp}" --epochs "$EPOCHS" \
        --out "$W/peer.json" >/dev/null 2>"$W/peer.log"
fi
[ -f "$W/peer.json" ] && summary "$W/peer.json" "torchvision ${PEER_ARCH:-lraspp} ($EPOCHS ep)" \
    "$($PY -c "import json; print('%.0f' % json.load(open('$W/peer.json'))['seconds_per_epoch'])")"

onnx_miou() { # ONNX (argmax output) -> mIoU over val, the images preprocessed as the spec says (TAO's
    # default colour scaling x/127.5 - 1; OpenCV's area resize, close to deft's bilinear at 1.5x)
    $PY - "$DATA/val" "$1" "$SRC/tests/ref/ort_run.js" "$W/onnx_tmp" <<'PY'
import glob, json, os, subprocess, sys
import cv2, numpy as np
val, model, runner, tmp = sys.argv[1:5]
os.makedirs(tmp, exist_ok=True)
conf = np.zeros((11, 11), np.int64)
ims = sorted(glob.glob(val + "/images/*.jpg"))
for i in range(0, len(ims), 16):  # 16 images a node run, one at a time inside it (ORT_SPLIT)
    xs, ms = [], []
    for p in ims[i:i + 16]:
        im = cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)
        xs.append(cv2.resize(im, (320, 240), interpolation=cv2.INTER_AREA).astype(np.float32).transpose(2, 0, 1) / 127.5 - 1)
        m = cv2.imread(val + "/labels/" + os.path.basename(p)[:-4] + ".png", cv2.IMREAD_UNCHANGED)
        ms.append(cv2.resize(m, (320, 240), interpolation=cv2.INTER_NEAREST))
    np.save(tmp + "/x.npy", np.stack(xs))
    subprocess.run(["node", runner, model, tmp + "/x.npy", tmp + "/y.npy"], check=True, env=dict(os.environ, ORT_SPLIT="1"))
    pred, t = np.load(tmp + "/y.npy").reshape(len(ms), -1), np.stack(ms).reshape(len(ms), -1)
    keep = t != 11
    conf += np.bincount(t[keep].astype(np.int64) * 11 + pred[keep], minlength=121).reshape(11, 11)
tp = np.diag(conf).astype(float)
d = conf.sum(0) + conf.sum(1) - tp
iou = np.where(d > 0, tp / np.maximum(d, 1), np.nan)
print(json.dumps({"mIoU": float(np.nanmean(iou)), "pixel_accuracy": float(tp.sum() / conf.sum())}))
PY
}
if has onnx; then
    B=$W/deft/weights/best.safetensors
    "$DEFT" unet export -m "$B" -o "$W/onnx/float.onnx" --output argmax >"$W/onnx.log" 2>&1
    "$DEFT" unet export -m "$B" -o "$W/onnx/int8.onnx" --output argmax --data_type int8 \
        --cal_image_dir "$DATA/train/images" --batches 10 --batch_size 4 --qdq_file "$W/onnx/qdq.onnx" >>"$W/onnx.log" 2>&1
    f=$(onnx_miou "$W/onnx/float.onnx")
    q=$(onnx_miou "$W/onnx/qdq.onnx")
    echo "onnxruntime float ONNX: $f"
    echo "onnxruntime INT8 QDQ:   $q"
fi

if has prune; then
    B=$W/deft/weights/best.safetensors
    "$DEFT" unet prune -m "$B" -o "$W/pruned.safetensors" --target_ratio 0.5 -pg 16 >"$W/prune.log" 2>&1
    t0=$(date +%s)
    # shellcheck disable=SC2046
    "$DEFT" unet train -e "$SPEC" -r "$W/retrain" --overwrite $(sets "$RETRAIN") \
        --set model_config.pruned_model_path="$W/pruned.safetensors" >"$W/retrain.log" 2>&1
    echo $(( ($(date +%s) - t0) / RETRAIN )) >"$W/retrain.spe"
    # shellcheck disable=SC2046
    "$DEFT" unet evaluate -e "$SPEC" -r "$W/retrain" $(sets "$RETRAIN") >"$W/retrain.eval" 2>&1
    grep -o '"ratio[^,]*' "$W/prune/report.json" 2>/dev/null | head -2 || true
    tail -1 "$W/prune.log"
    summary "$W/retrain/evaluate/metrics.json" "pruned, retrained $RETRAIN ep" "$(cat "$W/retrain.spe")"
    for m in "$B" "$W/retrain/weights/best.safetensors"; do
        echo "$(basename "$(dirname "$(dirname "$m")")"): $("$DEFT" bench infer -m "$m" --batch 1 --steps 20 2>/dev/null)"
    done
fi

if has speed; then
    E=${SPEED_EPOCHS:-1}
    t0=$(date +%s)
    # shellcheck disable=SC2046
    "$DEFT" unet train -e "$SPEC" -r "$W/speed" --overwrite $(sets "$E") >"$W/speed.log" 2>&1
    echo "per epoch (184 images trained, 101 validated; $E epoch(s) each, one after the other):"
    echo "  deft resnet18 UNet           $(( ($(date +%s) - t0) / E )) s  ($(grep -o '[0-9.]* img/s' "$W/speed.log" | tail -1) training)"
    for arch in ${SPEED_PEERS:-lraspp fcn}; do
        t0=$(date +%s)
        $PY "$SRC/bench/unet_camvid_peer.py" "$DATA" --arch "$arch" --epochs "$E" --out "$W/speed_$arch.json" \
            >/dev/null 2>>"$W/speed.log"
        printf '  PyTorch %-20s %s s  (%s training)\n' "$arch" "$(( ($(date +%s) - t0) / E ))" \
            "$($PY -c "import json; print('%.1f img/s' % json.load(open('$W/speed_$arch.json'))['train_images_per_second'])")"
    done
    # the same network in PyTorch: its transposed convolutions run on ATen's slow path (tens of
    # seconds a step here), so it is timed over SPEED_STEPS steps after a warm-up one, not an epoch
    for arch in ${SPEED_STEP_PEERS:-unet_resnet18}; do
        $PY "$SRC/bench/unet_camvid_peer.py" "$DATA" --arch "$arch" --max_steps "${SPEED_STEPS:-3}" \
            --out "$W/speed_$arch.json" >/dev/null 2>>"$W/speed.log"
        $PY -c "import json; r = json.load(open('$W/speed_$arch.json')); s = r['train_images_per_second']
print('  PyTorch %-20s %.0f s training alone, extrapolated  (%.2f img/s training over %d steps)' % ('$arch', 184 / s, s, r['timed_steps']))"
    done
fi
