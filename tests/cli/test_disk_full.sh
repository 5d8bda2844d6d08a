#!/bin/sh
# A results directory that fills up, and one that turns read-only, during
# training: a clear one-line error naming the file, exit status 1, and the
# previous checkpoint still loadable (checkpoints are written to a temporary
# name, fsynced and renamed, so a failed write never replaces a good file).
# As root the results live on a small tmpfs sized to hold two checkpoints but
# not a third (a real ENOSPC), then remounted read-only (EROFS); without the
# right to mount, a file-size limit (RLIMIT_FSIZE, EFBIG) stands in for the
# full disk and the read-only case is skipped.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for split in ("train", "val"):
    for c in ("a", "b"):
        os.makedirs(f"{sys.argv[1]}/{split}/{c}", exist_ok=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(f"{sys.argv[1]}/{split}/{c}/{i}.png")
PY
spec() { cat >"$T/spec.yaml" <<EOF2
model_config:
  arch: resnet10
  input_image_size: "3,32,32"
train_config:
  train_dataset_path: $T/data/train
  val_dataset_path: $T/data/val
  batch_size_per_gpu: 4
  n_epochs: $1
  n_workers: 1
  random_seed: 1
  optimizer:
    sgd:
      lr: 0.01
      momentum: 0.9
  preprocess_mode: torch
  checkpoint_interval: 1
EOF2
}
train() { $DEFT classification train -e "$T/spec.yaml" --threads 1 "$@"; }
loadable() { $DEFT model info -m "$1" >/dev/null 2>&1; }
# one epoch elsewhere gives the size of a checkpoint
spec 1
train -r "$T/probe" >"$T/probe.log" 2>&1 || { bad "probe run: $(tail -2 "$T/probe.log")"; finish; exit 1; }
S=$(stat -c %s "$T/probe/weights/latest.safetensors")
echo "checkpoint size $S bytes"

check_failure() { # log what
    rc=$1
    msg=$(grep -i "error\|deft:" "$2" | tail -1)
    [ "$rc" -eq 1 ] && ok "$3: exit status 1" || bad "$3: exit status $rc: $(tail -2 "$2")"
    echo "$msg" | grep -qi "$4" && ok "$3: clear message: $msg" || bad "$3: message lacks '$4': $msg"
}

M=$T/mnt
mkdir -p "$M"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=$((S * 5 / 2)) tmpfs "$M" 2>/dev/null; then
    trap 'umount "$M" 2>/dev/null; rm -rf "$T"' EXIT
    # epoch 1 writes latest and best (2 checkpoints); epoch 2 cannot write a third
    spec 3
    train -r "$M/r" >"$T/full.log" 2>&1
    check_failure $? "$T/full.log" "full tmpfs" "no space\|disk full"
    loadable "$M/r/weights/latest.safetensors" && ok "full tmpfs: the previous latest checkpoint loads" ||
        bad "full tmpfs: latest checkpoint not loadable"
    left=$(ls "$M/r/weights" | grep -c '\.tmp\.' || true)
    [ "$left" -eq 0 ] && ok "full tmpfs: the partial temporary file was removed" || bad "full tmpfs: $left temporary files left"
    # read-only: a fresh mount holding one good run, remounted ro, then resumed
    umount "$M"
    mount -t tmpfs -o size=$((S * 8)) tmpfs "$M"
    spec 1
    train -r "$M/r" >"$T/ro0.log" 2>&1 || bad "read-only setup run: $(tail -2 "$T/ro0.log")"
    before=$(md5sum "$M/r/weights/latest.safetensors" | cut -d' ' -f1)
    mount -o remount,ro "$M"
    spec 2
    train -r "$M/r" --resume >"$T/ro.log" 2>&1
    check_failure $? "$T/ro.log" "read-only results directory" "read-only"
    [ "$(md5sum "$M/r/weights/latest.safetensors" | cut -d' ' -f1)" = "$before" ] && loadable "$M/r/weights/latest.safetensors" &&
        ok "read-only: latest checkpoint intact and loadable" || bad "read-only: latest checkpoint changed or unloadable"
    umount "$M"
else
    echo "note: cannot mount a tmpfs here (not root); a file-size limit stands in for the full disk"
    spec 3
    /usr/bin/python3 -c '
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
lim = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))
os.execv(sys.argv[2], sys.argv[2:])' $((S * 3 / 2)) "$DEFT" classification train -e "$T/spec.yaml" --threads 1 \
        -r "$T/r" >"$T/full.log" 2>&1
    check_failure $? "$T/full.log" "file-size limit" "too large\|no space\|disk full"
    echo "SKIP read-only results directory (needs root to mount)"
fi
finish
