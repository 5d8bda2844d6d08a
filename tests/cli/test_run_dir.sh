#!/bin/sh
# The results folder of a training run is protected (issue 24 #3, #11): a
# folder holding a run is refused without --resume or --overwrite and left
# untouched; --overwrite clears the run's files but not the user's; --resume
# with nothing to resume says so (exit 2) and writes nothing; without -r (and
# no results_dir in the spec) runs go to runs/classification/train, train2 ...;
# a run that fails at the start leaves no empty folders behind; status.json
# ends with the run's status.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
DEFT=$(cd "$(dirname "$DEFT")" && pwd)/$(basename "$DEFT")
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
rng = np.random.default_rng(1)
for split in ("train", "val"):
    for c in ("a", "b"):
        os.makedirs(f"{sys.argv[1]}/{split}/{c}", exist_ok=True)
        for i in range(4):
            a = rng.normal(100 if c == "a" else 160, 30, (24, 24, 3))
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{sys.argv[1]}/{split}/{c}/{i}.png")
PY
cat >"$T/spec.yaml" <<EOF2
model_config:
  arch: resnet10
  input_image_size: "3,24,24"
train_config:
  train_dataset_path: $T/data/train
  val_dataset_path: $T/data/val
  batch_size_per_gpu: 4
  n_epochs: 2
  n_workers: 1
  random_seed: 1
  checkpoint_interval: 1
  optimizer:
    sgd:
      lr: 0.01
EOF2
train() { $DEFT classification train -e "$T/spec.yaml" --threads 1 "$@"; }
R=$T/run
train -r "$R" >"$T/1.log" 2>&1 && tail -1 "$R/status.json" | grep -q '^{"status":"finished","epoch":2,"max_epoch":2,' &&
    ok "a run ends with a 'finished' status line" || bad "first run: $(tail -2 "$T/1.log"; tail -1 "$R/status.json")"
grep -q '"max_epoch":2,"time_per_epoch":[0-9.e-]*,"eta":' "$R/status.json" &&
    ok "epoch lines carry max_epoch, time_per_epoch, eta" || bad "epoch lines: $(head -1 "$R/status.json")"
sum0=$(cat "$R/weights/latest.safetensors" "$R/status.json" "$R/metrics.csv" | cksum)

train -r "$R" >"$T/2.out" 2>"$T/2.err"; rc=$?
[ $rc -eq 2 ] && grep -q "already holds a run (weights/latest.safetensors.*--resume.*--overwrite" "$T/2.err" &&
    [ "$(cat "$R/weights/latest.safetensors" "$R/status.json" "$R/metrics.csv" | cksum)" = "$sum0" ] &&
    ok "a folder holding a run is refused, untouched: $(cat "$T/2.err")" || bad "second run into a run's folder: exit $rc: $(cat "$T/2.err")"

echo "my notes" >"$R/notes.txt"
: >"$R/weights/classification_resnet10_epoch_099.safetensors"
train -r "$R" --overwrite >"$T/3.log" 2>&1 && [ -f "$R/notes.txt" ] &&
    [ ! -e "$R/weights/classification_resnet10_epoch_099.safetensors" ] &&
    [ "$(grep -c '"epoch"' "$R/status.json")" -eq 3 ] && [ "$(wc -l <"$R/metrics.csv")" -eq 3 ] &&
    ok "--overwrite clears the old run's files (not the user's) and starts over" ||
    bad "--overwrite: $(tail -2 "$T/3.log"); $(ls "$R" "$R/weights" | tr '\n' ' ')"

# the run records itself (issue 24 #5)
[ -s "$R/spec.yaml" ] && [ "$(wc -l <"$R/command.txt")" -eq 1 ] && grep -q "^deft classification train -e .*spec.yaml --threads 1 -r .* --overwrite$" "$R/command.txt" &&
    ok "spec.yaml and command.txt: $(cat "$R/command.txt")" || bad "run record: $(ls "$R" | tr '\n' ' '); $(cat "$R/command.txt")"
grep -q "^epoch 2/2: loss" "$R/deft.log" && grep -q "^done: best val top-1" "$R/deft.log" && ! grep -q "$(printf '\r')" "$R/deft.log" &&
    ok "deft.log has what the run printed (no progress-bar updates)" || bad "deft.log: $(head -5 "$R/deft.log")"
train -e "$R/spec.yaml" -r "$T/again" --log_file "$T/copy.log" >"$T/again.log" 2>&1 &&
    cmp -s "$R/weights/best.safetensors" "$T/again/weights/best.safetensors" &&
    ok "training from the saved spec.yaml reproduces best.safetensors bit for bit" || bad "rerun of spec.yaml: $(tail -2 "$T/again.log")"
cmp -s "$T/copy.log" "$T/again/deft.log" && ok "--log_file gets a copy of deft.log" || bad "--log_file: $(ls -l "$T/copy.log" "$T/again/deft.log")"
train -e "$R/spec.yaml" -r "$T/again" --set train_config.n_epochs=3 --resume >"$T/again2.log" 2>&1 &&
    [ "$(wc -l <"$T/again/command.txt")" -eq 2 ] && grep -q "^deft classification train .* --set train_config.n_epochs=3 --resume$" "$T/again/command.txt" &&
    grep -q "n_epochs: 3" "$T/again/spec.yaml" && ok "a resume adds its command line; spec.yaml has the --set value" ||
    bad "resume record: $(tail -2 "$T/again2.log"); $(cat "$T/again/command.txt")"

train -r "$R" --resume --overwrite >"$T/4.out" 2>"$T/4.err"; rc=$?
[ $rc -eq 2 ] && ok "--resume with --overwrite: exit 2, $(cat "$T/4.err")" || bad "--resume --overwrite: exit $rc"

train -r "$T/empty" --resume >"$T/5.out" 2>"$T/5.err"; rc=$?
[ $rc -eq 2 ] && grep -q "nothing to resume" "$T/5.err" && [ ! -e "$T/empty" ] &&
    ok "--resume on an empty folder: exit 2, nothing written: $(cat "$T/5.err")" || bad "--resume on nothing: exit $rc: $(cat "$T/5.err")"

echo "not a model" >"$T/junk.safetensors"
train -r "$T/failed" --set train_config.pretrained_model_path="$T/junk.safetensors" >"$T/6.out" 2>"$T/6.err"; rc=$?
[ $rc -ne 0 ] && [ ! -e "$T/failed/weights" ] && [ ! -e "$T/failed/plots" ] && [ "$(ls "$T/failed")" = deft.log ] &&
    tail -1 "$T/failed/deft.log" | grep -q "^deft: .*junk.safetensors" &&
    ok "a run failing at its start leaves only deft.log, ending with the error (exit $rc)" ||
    bad "failed start: exit $rc, left $(ls -R "$T/failed" 2>/dev/null | tr '\n' ' ')"

train -r "$T/keep" --set train_config.n_epochs=3 --set train_config.keep_checkpoints=1 --set train_config.save_best=false >"$T/k.log" 2>&1 &&
    [ "$(ls "$T/keep/weights" | tr '\n' ' ')" = "classification_resnet10_epoch_003.safetensors latest.safetensors " ] &&
    ok "keep_checkpoints: 1 keeps the newest epoch file; save_best: false writes no best" ||
    bad "keep_checkpoints/save_best: $(tail -1 "$T/k.log"); $(ls "$T/keep/weights" | tr '\n' ' ')"

mkdir "$T/cwd" && cd "$T/cwd" || exit 1
train >"$T/7.log" 2>&1 && train >>"$T/7.log" 2>&1 && [ -s runs/classification/train/weights/best.safetensors ] &&
    [ -s runs/classification/train2/weights/best.safetensors ] && ok "without -r: runs/classification/train, then train2" ||
    bad "automatic folders: $(tail -2 "$T/7.log"); $(ls runs/classification 2>&1 | tr '\n' ' ')"
train --resume >"$T/8.log" 2>&1 && grep -q "runs/classification/train2" "$T/8.log" && grep -q "already finished" "$T/8.log" &&
    ok "--resume without -r continues the last run (train2)" || bad "--resume without -r: $(tail -2 "$T/8.log")"
finish
