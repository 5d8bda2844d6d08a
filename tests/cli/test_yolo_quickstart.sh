#!/bin/sh
# Detectors without a spec (issue 24, "the same shape for the detectors"):
# `yolo_v4[_tiny] train --data DIR` finds the layout (KITTI, VOC, COCO), the
# split lists, the classes and the anchors (k-means on the training boxes),
# prints the spec, trains, and leaves spec.yaml, command.txt and deft.log;
# training again from spec.yaml reproduces best.safetensors bit for bit. The
# three layouts of one dataset give the same classes and anchors. Bad flags:
# one-line error, exit 2, nothing written.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
DEFT=$(cd "$(dirname "$DEFT")" && pwd)/$(basename "$DEFT")
# a small KITTI dataset: boxes of two classes on noise, train.txt/val.txt beside it
/usr/bin/python3 - "$T/kitti" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(3)
os.makedirs(f"{root}/images"); os.makedirs(f"{root}/labels")
stems = []
for i in range(16):
    a = rng.normal(120, 20, (96, 128, 3))
    lines = []
    for k in range(2):
        cls = ("Square", "bar")[k]
        w, h = (24, 24) if k == 0 else (40, 12)
        w, h = w + int(rng.integers(0, 8)), h + int(rng.integers(0, 6))
        x, y = int(rng.integers(0, 128 - w)), int(rng.integers(0, 96 - h))
        a[y:y + h, x:x + w] = (230, 40, 40) if k == 0 else (40, 40, 230)
        lines.append(f"{cls} 0.00 0 0.00 {x}.00 {y}.00 {x + w}.00 {y + h}.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00")
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{root}/images/im{i:02d}.jpg")
    open(f"{root}/labels/im{i:02d}.txt", "w").write("\n".join(lines) + "\n")
    stems.append(f"im{i:02d}")
open(f"{root}/train.txt", "w").write("\n".join(stems[:12]) + "\n")
open(f"{root}/val.txt", "w").write("\n".join(stems[12:]) + "\n")
PY
mkdir "$T/empty" "$T/w" "$T/voc" "$T/coco" && cd "$T/w" || exit 1
q() { $DEFT yolo_v4_tiny train --threads 1 "$@"; }
q --data "$T/kitti" --epochs 1 --batch 4 --size 128 >"$T/1.log" 2>&1
R=runs/yolo_v4_tiny/train
grep -q "^    split_list_path: \"$T/kitti/val.txt\"" "$T/1.log" && grep -q '^  target_class_mapping { key: "bar"' "$T/1.log" &&
    grep -q "^done: best val mAP" "$T/1.log" && grep -q "on 12 images of 2 classes" "$T/1.log" &&
    ok "train --data: split lists, classes and a run without a spec" || bad "train --data: $(tail -3 "$T/1.log")"
# TensorBoard shows the validation images with their predicted boxes (one PNG per validation)
[ "$(cat "$R"/events.out.tfevents.* | grep -a -c "val/predictions")" -ge 1 ] && cat "$R"/events.out.tfevents.* | grep -a -q "PNG" &&
    ok "TensorBoard: val/predictions image" || bad "no val/predictions image in the events file"
for f in spec.yaml command.txt deft.log weights/best.safetensors; do
    [ -s "$R/$f" ] && ok "the run leaves $f" || bad "no $R/$f"
done
q -e "$R/spec.yaml" -r "$T/again" >"$T/2.log" 2>&1 && cmp -s "$R/weights/best.safetensors" "$T/again/weights/best.safetensors" &&
    ok "training from its spec.yaml reproduces best.safetensors bit for bit" || bad "rerun from spec.yaml: $(tail -2 "$T/2.log")"
# the same boxes as VOC and as COCO: the same classes and anchors
$DEFT detection dataset_convert -i "$T/kitti/labels" --from kitti --images "$T/kitti/images" -o "$T/voc/Annotations" --to voc >/dev/null &&
    $DEFT detection dataset_convert -i "$T/kitti/labels" --from kitti --images "$T/kitti/images" -o "$T/coco/annotations.json" --to coco >/dev/null &&
    ln -s "$T/kitti/images" "$T/voc/JPEGImages" && ln -s "$T/kitti/images" "$T/coco/images" || bad "converting the dataset"
spec_of() { $DEFT yolo_v4 train --data "$@" --size 128 --dry_run 2>/dev/null | grep -E "anchor_shape|target_class_mapping|type: \""; }
spec_of "$T/kitti" --val "$T/kitti" | grep -v "type:" >"$T/k.txt" # with --val: every image of --data trains
for f in voc coco; do
    spec_of "$T/$f" >"$T/$f.txt"
    grep -q "type: \"$f\"" "$T/$f.txt" && [ "$(grep -v 'type:' "$T/$f.txt")" = "$(cat "$T/k.txt")" ] && [ "$(wc -l <"$T/k.txt")" -eq 5 ] &&
        ok "--data as $f: its format, the KITTI folder's classes and anchors" || bad "--data as $f: $(cat "$T/$f.txt")"
done
# a dataset whose train/val split lists are given (raccoon): the anchors of the example spec,
# made by hand with `deft yolo_v4 kmeans` on the same 160 training images
RAC=$SHARED/data/raccoon
if [ -d "$RAC/labels_kitti" ]; then
    q --data "$RAC" --dry_run 2>/dev/null | grep "anchor_shape" >"$T/rac.txt"
    grep "anchor_shape" "$SRC/specs/yolo_v4_tiny_raccoon.txt" | diff - "$T/rac.txt" >/dev/null && [ -s "$T/rac.txt" ] &&
        ok "raccoon: the anchors of specs/yolo_v4_tiny_raccoon.txt" || bad "raccoon anchors: $(cat "$T/rac.txt")"
else
    skip_part "raccoon anchors: ../shared/data/raccoon not present"
fi
rm -rf runs
mkdir -p "$T/nolabels/images" && cp "$T/kitti/images/im00.jpg" "$T/nolabels/images/"
for c in "--data $T/nope|No such file" "--data $T/empty|no images found" "--data $T/nolabels|no labels found" \
         "--data $T/kitti/train.txt|is not a folder" "--data $T/kitti --size 100|--size 100" \
         "--data $T/kitti --arch resnet18|run .deft yolo_v4 train." "--data $T/kitti --epochs 0|--epochs" \
         "--data $T/kitti --val $T/coco|coco labels but" "--data $T/kitti --lr 0|--lr" \
         "--data $T/kitti --pretrained $T/nope.pth|--pretrained" "-e $T/x.txt --data $T/kitti|without -e" \
         "--epochs 3|give -e SPEC, or --data"; do
    args=${c%%|*} want=${c#*|}
    # shellcheck disable=SC2086
    q $args >"$T/b.out" 2>"$T/b.err"; rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$T/b.err")" -eq 1 ] && grep -q -- "$want" "$T/b.err" && [ ! -e runs ] &&
        ok "bad flags ($args): exit 2, nothing written: $(cat "$T/b.err")" || bad "bad flags ($args): exit $rc: $(cat "$T/b.err"); $(ls)"
done
$DEFT yolo_v4 train --data "$T/kitti" --arch resnt18 --dry_run >/dev/null 2>"$T/b.err"; rc=$?
[ $rc -eq 2 ] && grep -q "^deft: --arch resnt18: .*did you mean 'resnet'" "$T/b.err" &&
    ok "--arch resnt18: the flag's error with a suggestion" || bad "--arch resnt18: exit $rc: $(cat "$T/b.err")"
finish
