#!/bin/sh
# The prune -> retrain -> evaluate -> prune again workflow on a small
# generated class-folder set (resnet10 at 32x32): the retraining spec points
# pretrained_model_path at the pruned model and trains its graph (irregular
# channel counts survive into the checkpoints), later actions take the
# retrained model, `deft bench infer -m` runs it, a failed prune writes
# nothing, and bad flags exit 2.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
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
PY
cat >"$T/spec.yaml" <<EOF2
model_config:
  arch: resnet10
  input_image_size: "3,32,32"
train_config:
  train_dataset_path: $T/data/train
  val_dataset_path: $T/data/val
  batch_size_per_gpu: 8
  n_epochs: 2
  n_workers: 2
  random_seed: 3
  optimizer:
    sgd:
      lr: 0.01
      momentum: 0.9
eval_config:
  eval_dataset_path: $T/data/val
EOF2
$DEFT classification train -e "$T/spec.yaml" -r "$T/base" --threads 2 >"$T/log" 2>&1 &&
    ok "baseline resnet10 trained" || { bad "baseline training"; tail -5 "$T/log"; }
M=$T/base/weights/latest.safetensors
$DEFT classification prune -m "$M" -o "$T/p.safetensors" -r "$T/pr" --target_ratio 0.4 -nf 8 >"$T/plog" 2>&1 &&
    grep -q "Pruning ratio (pruned model / original model): 0.3" "$T/plog" && [ -f "$T/pr/prune/report.json" ] &&
    ok "pruned to $(grep 'Pruning ratio' "$T/plog" | sed 's/.*: //') of the parameters" ||
    { bad "prune --target_ratio 0.4"; cat "$T/plog"; }
# the per-layer table lists every conv and the linear head, which stays whole
grep -q "layer1.0.conv1 *conv" "$T/plog" && grep -q "fc *linear .*(kept whole)" "$T/plog" &&
    ok "per-layer before -> after table" || bad "per-layer table"
$DEFT classification train -e "$T/spec.yaml" -r "$T/re" --threads 2 \
    --set train_config.pretrained_model_path="$T/p.safetensors" >"$T/rlog" 2>&1 &&
    grep -q "training the graph of" "$T/rlog" && grep -q "0 shape mismatch, 0 without weights" "$T/rlog" &&
    ok "retraining trains the pruned graph with all its weights" || { bad "retraining"; tail -5 "$T/rlog"; }
# the checkpoint keeps the pruned channel counts
R=$T/re/weights/latest.safetensors
want=$(/usr/bin/python3 -c "import json; l={x['name']: x['after'] for x in json.load(open('$T/pr/prune/report.json'))['layers']}; print(l['layer1.0.conv1'])")
$DEFT model info -m "$R" 2>/dev/null | grep "^layer1.0.conv1 " | grep -q "\[[0-9]*, $want, " &&
    ok "retrained checkpoint keeps layer1.0.conv1 at $want channels" ||
    { bad "checkpoint channel counts"; $DEFT model info -m "$R" | grep "layer1.0.conv1 "; }
$DEFT classification evaluate -e "$T/spec.yaml" -m "$R" >"$T/elog" 2>&1 && grep -q "top-1" "$T/elog" &&
    ok "evaluate the retrained pruned model" || { bad "evaluate"; tail -3 "$T/elog"; }
$DEFT classification train -e "$T/spec.yaml" -r "$T/re" --threads 2 --resume \
    --set train_config.pretrained_model_path="$T/p.safetensors" --set train_config.n_epochs=3 >"$T/rslog" 2>&1 &&
    grep -q "resumed from" "$T/rslog" && ok "resume a pruned retraining" || { bad "resume"; tail -3 "$T/rslog"; }
$DEFT classification prune -m "$R" -o "$T/pp.safetensors" -r "$T/pr2" -pth 0.7 -nf 4 >"$T/p2log" 2>&1 &&
    $DEFT model info -m "$T/pp.safetensors" >/dev/null && ok "prune again: $(grep 'Pruning ratio' "$T/p2log")" ||
    { bad "prune again"; tail -3 "$T/p2log"; }
$DEFT bench infer -m "$T/pp.safetensors" --batch 2 --steps 2 --warmup 1 --size 32 >"$T/blog" 2>&1 &&
    grep -q images_per_s "$T/blog" && ok "bench infer -m on a pruned model" || { bad "bench infer -m"; cat "$T/blog"; }
$DEFT classification prune -m "$M" --sweep -r "$T/sw" >"$T/swlog" 2>&1 && [ -f "$T/sw/prune/sweep.csv" ] &&
    [ -f "$T/sw/prune/sweep.png" ] && [ "$(wc -l <"$T/sw/prune/sweep.csv")" -gt 5 ] &&
    ok "--sweep writes the table and plot" || { bad "--sweep"; cat "$T/swlog"; }
# --sensitivity: each group alone at 3/4, 1/2, 1/4 of its filters, evaluated
# without retraining; layer1.0.conv1 at 1/2 removes 32 filters (3x3x64 each,
# 4 BN values each) and 32 input channels of layer1.0.conv2 (64 x 3x3 each)
$DEFT classification prune -m "$M" --sensitivity -e "$T/spec.yaml" -r "$T/se" >"$T/selog" 2>&1 &&
    /usr/bin/python3 - "$T/se/prune/sensitivity.csv" "$T/pr/prune/report.json" <<'PY' && ok "--sensitivity: counts, ratios, tied groups, top-1" || { bad "--sensitivity"; cat "$T/selog"; }
import csv, json, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
before = json.load(open(sys.argv[2]))["params_before"]
names = {r["layer"] for r in rows}
assert len(rows) == 3 * len(names), (len(rows), len(names))
for r in rows:
    b, a, k = int(r["before"]), int(r["after"]), float(r["keep"])
    want = min(b, max(16 if b >= 16 else b, -(-math.ceil(k * b) // 8) * 8))
    assert a == want, (r, want)
    assert 0 <= float(r["val_top1"]) <= 1 and float(r["param_ratio"]) < 1, r
r = [r for r in rows if r["layer"] == "layer1.0.conv1" and r["keep"] == "0.50"][0]
want = 1 - (32 * 64 * 9 + 32 * 4 + 64 * 32 * 9) / before
assert abs(float(r["param_ratio"]) - want) < 1e-6, (r, want)
assert int([r for r in rows if r["layer"] == "conv1"][0]["tied_layers"]) >= 2  # conv1 + the residual adds
assert "layer4.0.conv1" in names and "fc" not in names  # the head reaches the output: kept whole
PY
# bad usage: exit 2 with a message, nothing written
printf 'model_config:\n  arch: resnet10\n  archh: resnet10\n' >"$T/typo.yaml"
for args in "-m $M" "-m $M -o $T/x.safetensors -n foo" "-m $M -o $T/x.safetensors -eq bar" \
    "-m $M -o $T/x.safetensors --target_ratio 1.5" "-m $M -o $T/x.safetensors -pg 0" \
    "-m $M -o $T/x.safetensors --target_ratio 0.000001" "-m $M --sensitivity -e $T/typo.yaml"; do
    $DEFT classification prune $args >/dev/null 2>"$T/err"
    rc=$?
    [ $rc = 2 ] && [ -s "$T/err" ] && [ ! -e "$T/x.safetensors" ] && ok "prune $args -> exit 2" ||
        { bad "prune $args (rc $rc)"; cat "$T/err"; }
done
$DEFT classification prune -m "$T/nope.safetensors" -o "$T/x.safetensors" >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q nope.safetensors "$T/err" && [ ! -e "$T/x.safetensors" ] && ok "a missing model: exit 2, error naming it" ||
    bad "missing model"
finish
