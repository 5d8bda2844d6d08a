#!/bin/sh
# SIGKILL at 20 random moments of a classification run (each restart resumes
# from the last checkpoint and is killed again, at any point: loading,
# training, validating, writing a checkpoint). After every kill the results
# directory must hold a loadable latest checkpoint; the last resume must run
# to the end, and its final weights, best model and metrics.csv must equal
# those of an uninterrupted run.
# The kill times come from a seed printed below (DEFT_KILL_SEED=N to replay).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
KILLS=${DEFT_KILLS:-20}
SEED=${DEFT_KILL_SEED:-$(date +%s)}
echo "kill seed $SEED"
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
for split, n in (("train", 12), ("val", 4)):
    for c, name in enumerate(("circle", "hstripe", "vstripe")):
        os.makedirs(f"{root}/{split}/{name}", exist_ok=True)
        for i in range(n):
            a = rng.normal(110, 40, (32, 32, 3))
            yy, xx = np.mgrid[0:32, 0:32]
            if c == 0: a[(yy - 16) ** 2 + (xx - 16) ** 2 < 80] += 100
            if c == 1: a[(yy // 4) % 2 == 0] += 90
            if c == 2: a[:, (xx[0] // 4) % 2 == 0] += 90
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{root}/{split}/{name}/{i}.png")
PY
cat >"$T/spec.yaml" <<EOF2
model_config:
  arch: resnet10
  input_image_size: "3,32,32"
train_config:
  train_dataset_path: $T/data/train
  val_dataset_path: $T/data/val
  batch_size_per_gpu: 6
  n_epochs: 20
  n_workers: 1
  random_seed: 5
  optimizer:
    sgd:
      lr: 0.02
      momentum: 0.9
  preprocess_mode: torch
  checkpoint_interval: 1000
EOF2
train() { $DEFT classification train -e "$T/spec.yaml" --threads 1 "$@"; }
# in the background the run must be deft's own process, not a subshell
# running the function: kill -9 of the subshell would leave deft running on
# as a second writer into the results directory
train_bg() { exec $DEFT classification train -e "$T/spec.yaml" --threads 1 "$@"; }
digest() { /usr/bin/python3 - "$1" <<'PY'
import sys, json, struct, hashlib
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
d = b[8 + n:]; m = hashlib.sha256()
for k in sorted(k for k in h if k != "__metadata__"):
    a, e = h[k]["data_offsets"]; m.update(k.encode()); m.update(d[a:e])
print(m.hexdigest())
PY
}
R=$T/killed
LATEST=$R/weights/latest.safetensors
# delays in ms, uniform in [50, 1500): kills land in start-up as well as mid-epoch
DELAYS=$(awk -v s="$SEED" -v n="$KILLS" 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%d ", 50 + int(rand() * 1450) }')
good=0 landed=0 i=0
for d in $DELAYS; do
    i=$((i + 1))
    if [ -f "$LATEST" ]; then train_bg -r "$R" --resume >>"$T/kill.log" 2>&1 &
    else train_bg -r "$R" >>"$T/kill.log" 2>&1 & fi
    pid=$!
    if [ $i -eq 1 ]; then # the first kill only once a checkpoint exists
        w=0; while [ ! -f "$LATEST" ] && [ $w -lt 600 ] && kill -0 $pid 2>/dev/null; do sleep 0.05; w=$((w + 1)); done
    fi
    sleep "$(awk -v d="$d" 'BEGIN { printf "%.3f", d / 1000 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $? -eq 137 ] && landed=$((landed + 1)) # died of the SIGKILL, not finished before it
    if $DEFT model info -m "$LATEST" >"$T/info.log" 2>&1; then good=$((good + 1))
    else echo "after kill $i (${d} ms): latest checkpoint not loadable: $(tail -1 "$T/info.log")"; fi
done
echo "kills landed during training: $landed/$KILLS; loadable latest checkpoint after each: $good/$KILLS"
pgrep -f "classification train -e $T/spec.yaml" >/dev/null && bad "a killed run is still running"
[ $good -eq "$KILLS" ] && ok "latest checkpoint loadable after every kill ($good/$KILLS)" || bad "loadable after $good of $KILLS kills"
[ $landed -ge $((KILLS / 2)) ] && ok "$landed kills landed mid-run" || bad "only $landed kills landed (runs ended before the kill)"
train -r "$R" --resume >>"$T/kill.log" 2>&1 && tail -1 "$R/status.json" | grep -q '"epoch":20,' &&
    ok "resume after the last kill completes" || bad "final resume: $(tail -3 "$T/kill.log")"
train -r "$T/full" >"$T/full.log" 2>&1 || bad "uninterrupted run: $(tail -3 "$T/full.log")"
[ "$(digest "$LATEST")" = "$(digest "$T/full/weights/latest.safetensors")" ] &&
    ok "weights after $KILLS kills equal the uninterrupted run's" || bad "weights after kills differ from the uninterrupted run"
[ -s "$T/full/weights/best.safetensors" ] && cmp -s "$R/weights/best.safetensors" "$T/full/weights/best.safetensors" &&
    ok "best.safetensors after $KILLS kills byte-identical to the uninterrupted run's" || bad "best.safetensors after kills differs"
fig() { cut -d, -f1-4,6- "$1"; }
[ "$(wc -l <"$R/metrics.csv")" -eq 21 ] && [ "$(fig "$R/metrics.csv")" = "$(fig "$T/full/metrics.csv")" ] &&
    ok "metrics.csv after $KILLS kills: every epoch once, the uninterrupted figures" || bad "metrics.csv after kills: $(diff "$R/metrics.csv" "$T/full/metrics.csv" | head -3)"
stale=$(ls "$R/weights" | grep -c '\.tmp\.' || true)
[ "$stale" -eq 0 ] && ok "no temporary files left in weights/" || bad "$stale temporary files left in weights/"
finish
