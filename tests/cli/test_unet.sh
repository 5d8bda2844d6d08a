#!/bin/sh
# deft unet train / evaluate / inference end to end on a small generated set (bright discs
# on noise, 0/255 masks as ISBI's): the TAO spec form trains, best.safetensors is kept,
# the validation mIoU rises well above chance, evaluate writes metrics.json with the
# figures train printed, inference writes a mask per image at the image's own size, and
# a resumed run ends bit-identical to an uninterrupted one. A ResNet-18 UNet trains one
# epoch (its accuracy needs more steps than a test affords: batch norm's running statistics
# lag the first few dozen steps). TAO's ISBI spec passes
# --dry_run once its data paths point at data; so do the vgg, efficientnet_b0 and shufflenet
# encoders. Bad input: a mask of another size, a mask
# value outside data_class_config, an unknown field — exit 2 with the file named.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
DEFT=$(cd "$(dirname "$DEFT")" && pwd)/$(basename "$DEFT")
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(5)
for split, n in (("train", 12), ("val", 4), ("test", 2)):
    os.makedirs(f"{root}/images/{split}"); os.makedirs(f"{root}/masks/{split}")
    for i in range(n):
        h, w = 72, 88
        yy, xx = np.mgrid[0:h, 0:w]
        m = np.zeros((h, w), bool)
        for _ in range(3):
            cy, cx, r = rng.integers(8, h - 8), rng.integers(8, w - 8), rng.integers(5, 12)
            m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img = np.where(m, 190, 70) + rng.normal(0, 25, (h, w))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{root}/images/{split}/{i:02d}.png")
        Image.fromarray(np.where(m, 255, 0).astype(np.uint8)).save(f"{root}/masks/{split}/{i:02d}.png")
PY
cat >"$T/spec.txt" <<EOF
random_seed: 42
model_config {
  model_input_width: 64
  model_input_height: 64
  model_input_channels: 1
  arch: "vanilla_unet_dynamic"
  use_batch_norm: false
}
training_config {
  batch_size: 4
  epochs: 4
  checkpoint_interval: 1
  loss: "cross_entropy"
  learning_rate: 0.001
  regularizer {
    type: L2
    weight: 2e-5
  }
  optimizer {
    adam {
      epsilon: 1e-8
      beta1: 0.9
      beta2: 0.999
    }
  }
}
dataset_config {
  dataset: "custom"
  augment: true
  augmentation_config {
    spatial_augmentation {
      hflip_probability: 0.5
      vflip_probability: 0.5
    }
  }
  input_image_type: "grayscale"
  train_images_path: "$T/data/images/train"
  train_masks_path: "$T/data/masks/train"
  val_images_path: "$T/data/images/val"
  val_masks_path: "$T/data/masks/val"
  test_images_path: "$T/data/images/test"
  data_class_config {
    target_classes {
      name: "background"
      mapping_class: "background"
      label_id: 0
    }
    target_classes {
      name: "disc"
      mapping_class: "disc"
      label_id: 1
    }
  }
}
EOF
u() { $DEFT unet "$@" --threads 1; }
u train -e "$T/spec.txt" -r "$T/run" >"$T/train.log" 2>&1 && [ -s "$T/run/weights/best.safetensors" ] &&
    ok "train: 4 epochs, best.safetensors" || { bad "train: $(tail -5 "$T/train.log")"; finish; exit 1; }
best=$(sed -n 's/^done: best val mIoU \([0-9.]*\).*/\1/p' "$T/train.log")
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$best') >= 0.6 else 1)" 2>/dev/null &&
    ok "validation mIoU $best (discs vs background, chance ~0.35)" || bad "best val mIoU '$best': $(grep '^epoch' "$T/train.log" | tail -2)"
u evaluate -e "$T/spec.txt" -r "$T/run" >"$T/eval.log" 2>&1 && [ -s "$T/run/evaluate/metrics.json" ] &&
    [ -s "$T/run/evaluate/confusion.png" ] && ok "evaluate -r RUN: metrics.json and confusion.png" ||
    bad "evaluate: $(tail -3 "$T/eval.log")"
miou=$(/usr/bin/python3 -c "import json; print('%.4f' % json.load(open('$T/run/evaluate/metrics.json'))['mIoU'])")
[ "$miou" = "$best" ] && ok "evaluate's mIoU is the one training chose the best model by ($miou)" ||
    bad "evaluate mIoU $miou, training's best $best"
u inference -m "$T/run/weights/best.safetensors" -e "$T/spec.txt" -i "$T/data/images/test" -o "$T/inf" >"$T/inf.log" 2>&1 &&
    /usr/bin/python3 - "$T" <<'PY' && ok "inference: a mask per image at its own size (88x72) finding the discs (IoU > 0.5), with a colour overlay" || bad "inference: $(tail -3 "$T/inf.log")"
import sys, numpy as np
from PIL import Image
t = sys.argv[1]
for i in range(2):
    m = np.asarray(Image.open(f"{t}/inf/masks/{i:02d}.png"))
    o = Image.open(f"{t}/inf/overlays/{i:02d}.png")
    truth = np.asarray(Image.open(f"{t}/data/masks/test/{i:02d}.png")) > 127
    assert m.shape[:2] == (72, 88) and o.size == (88, 72), (m.shape, o.size)
    pred = (m if m.ndim == 2 else m[..., 0]) == 1
    iou = (pred & truth).sum() / max(1, (pred | truth).sum())
    assert iou > 0.5, iou
PY
# resize_padding (88x72 lands as 64x52 at y = 6) and resize_method AREA: the mask maps back from
# the image's place only, still at the image's own size
u inference -m "$T/run/weights/best.safetensors" -e "$T/spec.txt" -i "$T/data/images/test" -o "$T/infp" \
    --set dataset_config.resize_padding=true --set dataset_config.resize_method=AREA >"$T/infp.log" 2>&1 &&
    /usr/bin/python3 - "$T" <<'PY' && ok "inference with resize_padding and AREA: masks at 88x72 finding the discs (IoU > 0.5)" || bad "padded inference: $(tail -3 "$T/infp.log")"
import sys, numpy as np
from PIL import Image
t = sys.argv[1]
for i in range(2):
    m = np.asarray(Image.open(f"{t}/infp/masks/{i:02d}.png"))
    truth = np.asarray(Image.open(f"{t}/data/masks/test/{i:02d}.png")) > 127
    assert m.shape[:2] == (72, 88), m.shape
    pred = (m if m.ndim == 2 else m[..., 0]) == 1
    iou = (pred & truth).sum() / max(1, (pred | truth).sum())
    assert iou > 0.5, iou
PY
# resume: stopped after 2 epochs, then --resume, ends as the straight run
u train -e "$T/spec.txt" -r "$T/run2" --set training_config.epochs=2 >/dev/null 2>&1
u train -e "$T/spec.txt" -r "$T/run2" --resume >"$T/resume.log" 2>&1
cmp -s "$T/run/weights/best.safetensors" "$T/run2/weights/best.safetensors" &&
    ok "2 epochs + --resume to 4: best.safetensors byte-identical to the straight run" ||
    bad "resume: $(tail -2 "$T/resume.log")"
u train -e "$T/spec.txt" -r "$T/res" --set model_config.arch=resnet --set model_config.num_layers=18 \
    --set model_config.use_batch_norm=true --set training_config.epochs=1 >"$T/res.log" 2>&1 &&
    grep -q "^training unet-resnet18 " "$T/res.log" && grep -q "^done: best val mIoU" "$T/res.log" &&
    ok "a ResNet-18 UNet trains an epoch" || bad "resnet18 UNet: $(tail -3 "$T/res.log")"
# the vgg (16/19), efficientnet_b0 and shufflenet encoders pass --dry_run (the network is built
# there: a freeze_blocks out of range is refused; shufflenet wants sides of a multiple of 32)
u train -e "$T/spec.txt" --dry_run --set model_config.arch=vgg --set model_config.num_layers=16 >"$T/vgg.log" 2>&1 &&
    grep -q "unet-vgg16, " "$T/vgg.log" &&
    u train -e "$T/spec.txt" --dry_run --set model_config.arch=vgg --set model_config.num_layers=19 \
        --set model_config.use_batch_norm=true --set 'model_config.freeze_blocks=[1, 2]' >"$T/vgg19.log" 2>&1 &&
    sed -n 's/.*unet-vgg19_bn, \([0-9.]*\)M parameters (\([0-9.]*\)M trainable).*/\1 \2/p' "$T/vgg19.log" |
    awk 'NR == 1 { ok = $2 > 0 && $2 < $1 } END { exit !ok }' &&
    u train -e "$T/spec.txt" --dry_run --set model_config.arch=efficientnet_b0 >"$T/eff.log" 2>&1 &&
    grep -q "unet-efficientnet_b0, " "$T/eff.log" &&
    ok "vgg 16, vgg 19 (batch norm, blocks 1-2 frozen), efficientnet_b0 pass --dry_run" ||
    bad "vgg / efficientnet_b0 --dry_run: $(tail -2 "$T/vgg.log" "$T/vgg19.log" "$T/eff.log" 2>/dev/null)"
u train -e "$T/spec.txt" --dry_run --set model_config.arch=vgg --set model_config.num_layers=16 \
    --set 'model_config.freeze_blocks=[6]' >/dev/null 2>"$T/fb.err"; rc=$?
[ $rc -eq 2 ] && grep -q "freeze_blocks out of range for vgg16 (1..5)" "$T/fb.err" &&
    ok "vgg freeze_blocks [6]: exit 2 at --dry_run" || bad "freeze_blocks [6]: exit $rc $(cat "$T/fb.err")"
u train -e "$T/spec.txt" --dry_run --set model_config.arch=shufflenet >"$T/sh.log" 2>&1 &&
    grep -q "unet-shufflenet, " "$T/sh.log" &&
    ok "shufflenet passes --dry_run ($(grep -o 'unet-shufflenet, [0-9.]*M parameters' "$T/sh.log"))" ||
    bad "shufflenet --dry_run: $(tail -2 "$T/sh.log")"
u train -e "$T/spec.txt" --dry_run --set model_config.arch=shufflenet --set model_config.model_input_width=80 \
    >/dev/null 2>"$T/sh.err"; rc=$?
[ $rc -eq 2 ] && grep -q "multiple of 32" "$T/sh.err" && ok "shufflenet 80 wide: exit 2 (multiple of 32)" ||
    bad "shufflenet 80 wide: exit $rc $(cat "$T/sh.err")"
# TAO's ISBI spec, its paths pointed at data that exists
ISBI=$SHARED/tao_specs/unet_train_resnet_unet_isbi.txt
if [ -f "$ISBI" ]; then
    sets=""
    for k in train_images_path val_images_path test_images_path; do sets="$sets --set dataset_config.$k=$T/data/images/train"; done
    for k in train_masks_path val_masks_path; do sets="$sets --set dataset_config.$k=$T/data/masks/train"; done
    # shellcheck disable=SC2086
    u train -e "$ISBI" --dry_run $sets >"$T/dry.log" 2>&1 && grep -q "resnet" "$T/dry.log" &&
        ok "TAO's ISBI spec passes --dry_run" || bad "ISBI --dry_run: $(tail -3 "$T/dry.log")"
else
    skip_part "TAO ISBI spec: ../shared not present"
fi
if [ -d "$SHARED/data/camvid_segnet_subset" ]; then
    u train -e "$SRC/specs/unet_resnet18_camvid.txt" --dry_run >"$T/cam.log" 2>&1 && grep -q "11 -> ignored" "$T/cam.log" &&
        ok "specs/unet_resnet18_camvid.txt passes --dry_run from any folder (11 classes, Unlabelled ignored)" ||
        bad "CamVid spec --dry_run: $(tail -3 "$T/cam.log")"
else
    skip_part "CamVid spec: ../shared/data/camvid_segnet_subset not present"
fi
# TAO's list-file sources (data_source: a file of image paths and one of mask paths, line by line;
# relative paths from the list's folder): the same pairs as the folders
(cd "$T/data" && ls images/train/*.png >train_images.txt && ls masks/train/*.png >train_masks.txt &&
    ls images/val/*.png >val_images.txt && { ls masks/val/*.png; echo; } >val_masks.txt)
sed -e "s|  train_images_path: .*|  train_data_sources { data_source { image_path: \"$T/data/train_images.txt\" masks_path: \"$T/data/train_masks.txt\" } }|" \
    -e '/  train_masks_path: /d' \
    -e "s|  val_images_path: .*|  val_data_sources { data_source { image_path: \"$T/data/val_images.txt\" masks_path: \"$T/data/val_masks.txt\" } }|" \
    -e '/  val_masks_path: /d' "$T/spec.txt" >"$T/lists.txt"
u train -e "$T/lists.txt" -r "$T/lrun" --set training_config.epochs=1 >"$T/lists.log" 2>&1 &&
    grep -q "^train: 12 image/mask pairs from $T/data/train_images.txt" "$T/lists.log" && grep -q "^val:   4 image/mask pairs" "$T/lists.log" &&
    ok "train_data_sources / val_data_sources list files: 12 and 4 pairs" || bad "list files: $(grep -v '%' "$T/lists.log" | tail -3)"
echo "images/train/missing.png" >>"$T/data/train_images.txt" && echo "masks/train/missing.png" >>"$T/data/train_masks.txt"
u train -e "$T/lists.txt" -r "$T/lrun2" --set training_config.epochs=1 >"$T/lists2.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "train_images.txt line 13: .*missing.png does not exist" "$T/lists2.log" &&
    ok "a listed image that does not exist: exit 2 naming the list and the line" || bad "missing listed image: exit $rc: $(tail -2 "$T/lists2.log")"
u train -e "$T/lists.txt" -r "$T/lrun3" --set training_config.epochs=1 --set dataset_config.filter_data=true >"$T/lists3.log" 2>&1 &&
    grep -q "^train: 12 image/mask pairs .*skipped" "$T/lists3.log" && ok "filter_data: true skips it and says so" ||
    bad "filter_data: $(grep -v '%' "$T/lists3.log" | tail -2)"
# bad input
cp -r "$T/data" "$T/bad"
/usr/bin/python3 -c "
from PIL import Image; import numpy as np
Image.fromarray(np.zeros((10, 10), np.uint8)).save('$T/bad/masks/train/03.png')
Image.fromarray(np.full((72, 88), 7, np.uint8)).save('$T/bad/masks/train/05.png')"
sed "s|$T/data/masks/train|$T/bad/masks/train|" "$T/spec.txt" >"$T/badspec.txt"
u train -e "$T/badspec.txt" -r "$T/badrun" >"$T/bad.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "masks/train/0[35].png" "$T/bad.log" && ok "a bad mask: exit 2 naming it ($(grep -o 'masks/train/0[35].png[^)]*' "$T/bad.log" | head -1))" ||
    bad "bad mask: exit $rc: $(tail -2 "$T/bad.log")"
sed 's/loss: "cross_entropy"/loss: "cross_entropi"/' "$T/spec.txt" >"$T/badspec2.txt"
u train -e "$T/badspec2.txt" -r "$T/badrun2" >"$T/bad2.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "badspec2.txt:[0-9]*" "$T/bad2.log" && [ ! -e "$T/badrun2" ] &&
    ok "unknown loss: exit 2 with file:line, nothing written" || bad "unknown loss: exit $rc: $(tail -2 "$T/bad2.log")"
finish
