#!/bin/sh
# Interrupting classification training (SIGINT, and kill -9) and resuming
# gives the same final weights as an uninterrupted run; SIGINT writes a
# checkpoint before exiting (exit status 130). Also: evaluate and inference on
# the result, and bad-spec errors with file:line and exit 2.
DEFT=${DEFT_BIN:-build/deft}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
for split, n in (("train", 16), ("val", 6)):
    for c, name in enumerate(("circle", "hstripe", "vstripe")):
        os.makedirs(f"{root}/{split}/{name}", exist_ok=True)
        for i in range(n):
            a = rng.normal(110, 40, (40, 48, 3))
            yy, xx = np.mgrid[0:40, 0:48]
            if c == 0: a[(yy - 20) ** 2 + (xx - 24) ** 2 < 120] += 100
            if c == 1: a[(yy // 5) % 2 == 0] += 90
            if c == 2: a[:, (xx[0] // 5) % 2 == 0] += 90
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{root}/{split}/{name}/{i}.jpg", quality=90)
open(f"{root}/train/circle/corrupt.jpg", "wb").write(b"\xff\xd8\xff\xe0 not really a jpeg")
PY
cat >"$T/spec.yaml" <<EOF2
model_config:
  arch: resnet10
  input_image_size: "3,32,32"
train_config:
  train_dataset_path: $T/data/train
  val_dataset_path: $T/data/val
  batch_size_per_gpu: 8
  n_epochs: 12
  n_workers: 2
  random_seed: 3
  optimizer:
    sgd:
      lr: 0.02
      momentum: 0.9
  enable_random_crop: true
  preprocess_mode: torch
  checkpoint_interval: 100
eval_config:
  eval_dataset_path: $T/data/val
  top_k: 2
EOF2
export OMP_NUM_THREADS=2
run() { $DEFT classification train -e "$T/spec.yaml" --threads 2 "$@"; }
wait_lines() { # wait until DIR/status.json has N lines (max 120 s)
    i=0; while [ "$(cat "$1/status.json" 2>/dev/null | wc -l)" -lt "$2" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
}
weights() { /usr/bin/python3 - "$1" <<'PY'
import sys, json, struct, hashlib
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
d = b[8 + n:]; m = hashlib.sha256()
for k in sorted(k for k in h if k != "__metadata__"):
    a, e = h[k]["data_offsets"]; m.update(k.encode()); m.update(d[a:e])
print(m.hexdigest())
PY
}

run -r "$T/full" >"$T/full.log" 2>&1 && ok "uninterrupted run" || bad "uninterrupted run: $(tail -3 "$T/full.log")"
grep -q "corrupt" "$T/full.log" && ok "corrupt image reported" || bad "corrupt image not reported"
ref=$(weights "$T/full/weights/latest.safetensors")

# SIGINT in the middle of epoch 3: checkpoint, exit 130, resume
$DEFT classification train -e "$T/spec.yaml" --threads 2 -r "$T/int" >"$T/int.log" 2>&1 &
pid=$!
wait_lines "$T/int" 2
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok "SIGINT exit status 130" || bad "SIGINT exit status $rc"
grep -q "checkpoint written" "$T/int.log" && ok "SIGINT wrote a checkpoint" || bad "no checkpoint message: $(tail -2 "$T/int.log")"
tail -1 "$T/int/status.json" | grep -q '^{"status":"interrupted","epoch":2,"max_epoch":12,' &&
    ok "SIGINT leaves an 'interrupted' status line" || bad "status after SIGINT: $(tail -1 "$T/int/status.json")"
run -r "$T/int" --resume >>"$T/int.log" 2>&1 && ok "resume after SIGINT" || bad "resume after SIGINT: $(tail -3 "$T/int.log")"
[ -n "$ref" ] && [ "$(weights "$T/int/weights/latest.safetensors")" = "$ref" ] && ok "SIGINT+resume weights identical" || bad "SIGINT+resume weights differ"

# kill -9 after epoch 4's checkpoint: resume from latest
$DEFT classification train -e "$T/spec.yaml" --threads 2 -r "$T/kill" >"$T/kill.log" 2>&1 &
pid=$!
wait_lines "$T/kill" 4
sleep 0.2
kill -9 $pid
wait $pid 2>/dev/null
[ $? -eq 137 ] && ok "kill -9 landed during training" || bad "kill -9 did not interrupt training"
run -r "$T/kill" --resume >>"$T/kill.log" 2>&1 && ok "resume after kill -9" || bad "resume after kill -9: $(tail -3 "$T/kill.log")"
[ -n "$ref" ] && [ "$(weights "$T/kill/weights/latest.safetensors")" = "$ref" ] && ok "kill -9+resume weights identical" || bad "kill -9+resume weights differ"

# the resumed runs continue the interrupted one: the same best model (byte
# for byte), every epoch in metrics.csv and status.json with the same figures
# (the time column aside), and a final status line
sha() { sha256sum "$1" 2>/dev/null | cut -c1-64; }
fig() { cut -d, -f1-4,6- "$1"; }
for d in int kill; do
    [ -s "$T/full/weights/best.safetensors" ] && [ "$(sha "$T/$d/weights/best.safetensors")" = "$(sha "$T/full/weights/best.safetensors")" ] &&
        ok "$d: best.safetensors byte-identical to the uninterrupted run's" ||
        bad "$d: best.safetensors differs ($(tail -1 "$T/$d/status.json"))"
    [ "$(wc -l <"$T/$d/metrics.csv")" -eq 13 ] && [ "$(fig "$T/$d/metrics.csv")" = "$(fig "$T/full/metrics.csv")" ] &&
        ok "$d: metrics.csv has every epoch with the uninterrupted figures" || bad "$d: metrics.csv: $(diff "$T/$d/metrics.csv" "$T/full/metrics.csv" | head -4)"
    [ "$(grep -c '"epoch"' "$T/$d/status.json")" -eq 13 ] && tail -1 "$T/$d/status.json" | grep -q '^{"status":"finished","epoch":12,"max_epoch":12,' &&
        ok "$d: status.json has 12 epoch lines and ends 'finished'" || bad "$d: status.json: $(cut -c1-60 "$T/$d/status.json")"
    /usr/bin/python3 - "$T/$d/metrics.csv" <<'PY' && ok "$d: the time column never goes back" || bad "$d: the time column restarts"
import csv, sys
t = [float(r["time"]) for r in csv.DictReader(open(sys.argv[1]))]
sys.exit(0 if all(b >= a for a, b in zip(t, t[1:])) else 1)
PY
done
grep -q "epoch $(tail -1 "$T/full/status.json" | sed 's/.*"epoch":\([0-9]*\)}.*/\1/'), best.safetensors" "$T/int.log" &&
    ok "resumed run names the best epoch of the whole run" || bad "best epoch: $(grep 'done:' "$T/int.log")"

# outputs of a run
for f in status.json metrics.csv plots/loss.png plots/accuracy.svg weights/best.safetensors; do
    [ -s "$T/full/$f" ] && ok "results has $f" || bad "results lacks $f"
done
ls "$T/full"/events.out.tfevents.* >/dev/null 2>&1 && ok "TensorBoard events file" || bad "no events file"

# evaluate + inference
$DEFT classification evaluate -e "$T/spec.yaml" -m "$T/full/weights/latest.safetensors" -r "$T/full" >"$T/eval.log" 2>&1 &&
    /usr/bin/python3 -c "import json,sys; r=json.load(open('$T/full/evaluate/results.json')); sys.exit(0 if 0<=r['top1']<=1 and r['num_images']==18 and len(r['confusion_matrix'])==3 else 1)" &&
    ok "evaluate results.json" || bad "evaluate: $(tail -3 "$T/eval.log")"
$DEFT classification inference -m "$T/full/weights/latest.safetensors" -i "$T/data/val/circle" -o "$T/inf.csv" >"$T/inf.log" 2>&1 &&
    [ "$(wc -l <"$T/inf.csv")" -eq 7 ] && ok "inference CSV" || bad "inference: $(tail -3 "$T/inf.log")"

# bad specs: exit 2 and file:line
printf 'model_config:\n  arch: resnet10\n  n_layer: 18\n' >"$T/bad1.yaml"
printf 'model_config {\n  arch: "resnet"\n  n_layers: "many"\n}\n' >"$T/bad2.txt"
printf 'model_config:\n  arch: resnet10\ntrain_config:\n  train_dataset_path: /nonexistent\n  batch_size_per_gpu: 4\n  n_epochs: 1\n' >"$T/bad3.yaml"
for b in bad1.yaml:3 bad2.txt:3 bad3.yaml; do
    f=${b%%:*}
    $DEFT classification train -e "$T/$f" -r "$T/x" >"$T/b.out" 2>"$T/b.err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q "$b\|$f" "$T/b.err"; then ok "bad spec $f: $(head -1 "$T/b.err")"; else bad "bad spec $f: exit $rc: $(cat "$T/b.err")"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
