#!/bin/sh
# Training without a spec (issue 24, Must show 2 and 4): `classification train
# --data DIR --val DIR --arch A --epochs N` prints the spec it builds, runs,
# and leaves spec.yaml, command.txt and deft.log; training again from that
# spec.yaml reproduces best.safetensors bit for bit. Bad flags give a one-line
# error, exit 2, and write nothing. export and inference create the folder
# of their -o.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
DEFT=$(cd "$(dirname "$DEFT")" && pwd)/$(basename "$DEFT")
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
rng = np.random.default_rng(2)
for split in ("train", "val"):
    for c in ("dark", "light"):
        os.makedirs(f"{sys.argv[1]}/{split}/{c}", exist_ok=True)
        for i in range(5):
            a = rng.normal(90 if c == "dark" else 170, 30, (40, 36, 3))
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{sys.argv[1]}/{split}/{c}/{i}.jpg")
PY
mkdir "$T/empty" "$T/w" && cd "$T/w" || exit 1
q() { $DEFT classification train --threads 1 "$@"; }
q --data "$T/data/train" --val "$T/data/val" --arch resnet10 --epochs 2 --batch 4 --size 32 >"$T/1.log" 2>&1
R=runs/classification/train
grep -q "^  train_dataset_path: \"$T/data/train\"" "$T/1.log" && grep -q "^done: best val top-1" "$T/1.log" &&
    ok "train --data runs without a spec and prints the spec it built" || bad "train --data: $(tail -3 "$T/1.log")"
[ "$(cat "$R"/events.out.tfevents.* | grep -a -c "val/predictions")" -ge 1 ] && cat "$R"/events.out.tfevents.* | grep -a -q "PNG" &&
    ok "TensorBoard: val/predictions image" || bad "no val/predictions image in the events file"
for f in spec.yaml command.txt deft.log weights/best.safetensors; do
    [ -s "$R/$f" ] && ok "the run leaves $f" || bad "no $R/$f"
done
q -e "$R/spec.yaml" -r "$T/again" >"$T/2.log" 2>&1 && cmp -s "$R/weights/best.safetensors" "$T/again/weights/best.safetensors" &&
    ok "training from its spec.yaml reproduces best.safetensors bit for bit" || bad "rerun from spec.yaml: $(tail -2 "$T/2.log")"
# outputs into folders that do not exist yet are created, as train's -r is (issue 24 #7)
$DEFT classification export -m "$R/weights/best.safetensors" -o new1/sub/m.onnx >"$T/3.log" 2>&1 && [ -s new1/sub/m.onnx ] &&
    ok "export -o newdir/m.onnx creates the folder" || bad "export into a new folder: $(tail -1 "$T/3.log")"
$DEFT classification inference -m "$R/weights/best.safetensors" -i "$T/data/val/dark" -o new2/out.csv >"$T/4.log" 2>&1 &&
    [ "$(wc -l <new2/out.csv)" -eq 6 ] && ok "inference -o newdir/out.csv creates the folder" ||
    bad "inference into a new folder: $(tail -1 "$T/4.log")"
# --pretrained NAME: a catalogue name found in the download cache; it also picks --arch
mkdir -p "$T/cache" && $DEFT model init --arch resnet18 -o "$T/cache/resnet18-f37072fd.pth" --classes 1000 >/dev/null 2>&1
DEFT_CACHE_DIR=$T/cache q --data "$T/data/train" --pretrained resnet18 --epochs 1 --batch 4 --size 32 -r "$T/pre" >"$T/5.log" 2>&1 &&
    grep -q "^  arch: resnet18" "$T/5.log" && grep -q "pretrained .*resnet18-f37072fd.pth: [0-9]* loaded, 2 shape mismatch" "$T/5.log" &&
    ok "--pretrained resnet18 takes the cached file and picks --arch resnet18" || bad "--pretrained NAME: $(grep -i 'pretrained\|deft:' "$T/5.log" | head -3)"
rm -rf runs
for c in "--data $T/nope:No such file" "--data $T/empty:has no class folders" "--data $T/data/train/dark/0.jpg:is not a folder" \
         "--data $T/data/train --arch resnet_fancy:--arch resnet_fancy" "--data $T/data/train --epochs 0:--epochs" \
         "--data $T/data/train --lr -1:--lr" "--data $T/data/train --pretrained $T/nope.pth:--pretrained" \
         "--data $T/data/train --pretrained resnet18:not downloaded yet .*deft model download resnet18" \
         "--data $T/data/train --pretrained resnet18 --arch resnet50:holds resnet18 weights, not --arch resnet50" \
         "--data $T/data/train --pretrained nosuchnet:not a name of .deft model list." \
         "-e $R/spec.yaml --data $T/data/train:without -e" "--arch resnet18:give -e SPEC, or --data"; do
    args=${c%%:*} want=${c#*:}
    # shellcheck disable=SC2086
    DEFT_CACHE_DIR=$T/empty q $args >"$T/b.out" 2>"$T/b.err"; rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$T/b.err")" -eq 1 ] && grep -q -- "$want" "$T/b.err" && [ ! -e runs ] &&
        ok "bad flags ($args): exit 2, nothing written: $(cat "$T/b.err")" || bad "bad flags ($args): exit $rc: $(cat "$T/b.err"); $(ls)"
done
finish
