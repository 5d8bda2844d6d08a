#!/bin/sh
# A NaN loss during training (DEFT_FAULT_NAN_STEP fills one batch with NaN, so
# the real detection path runs): training stops with exit status 1 and a
# message naming the epoch and step, the last good checkpoint stays as it was
# (finite, loadable) and --resume continues from it; with
# train_config.skip_nonfinite_batches the batch is skipped and counted, and
# neither the weights nor the batch-norm running statistics take the NaN.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
/usr/bin/python3 - "$T/data" <<'PY' || { echo "SKIP: /usr/bin/python3 with PIL/numpy missing"; exit 77; }
import sys, os, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for split in ("train", "val"):
    for c in ("a", "b", "c"):
        os.makedirs(f"{sys.argv[1]}/{split}/{c}", exist_ok=True)
        for i in range(6 if split == "train" else 2):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(f"{sys.argv[1]}/{split}/{c}/{i}.png")
PY
cat >"$T/spec.yaml" <<EOF2
model_config:
  arch: resnet10
  input_image_size: "3,32,32"
train_config:
  train_dataset_path: $T/data/train
  val_dataset_path: $T/data/val
  batch_size_per_gpu: 6
  n_epochs: 3
  n_workers: 1
  random_seed: 1
  optimizer:
    sgd:
      lr: 0.01
      momentum: 0.9
  preprocess_mode: torch
  checkpoint_interval: 1
EOF2
train() { $DEFT classification train -e "$T/spec.yaml" --threads 1 "$@"; }
finite() { /usr/bin/python3 - "$1" <<'PY'
import sys, json, struct, numpy as np
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
bad = [k for k, v in h.items() if k != "__metadata__" and v["dtype"] == "F32" and
       not np.isfinite(np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], np.float32)).all()]
print(" ".join(bad[:5])); sys.exit(1 if bad else 0)
PY
}
# 3 steps per epoch: step 5 (0-based) is epoch 2, step 3
DEFT_FAULT_NAN_STEP=5 train -r "$T/stop" >"$T/stop.log" 2>&1
rc=$?
msg=$(grep -i "nan" "$T/stop.log" | tail -1)
[ $rc -eq 1 ] && ok "NaN loss: exit status 1" || bad "NaN loss: exit status $rc: $(tail -2 "$T/stop.log")"
echo "$msg" | grep -q "epoch 2, step 3" && echo "$msg" | grep -q "latest.safetensors" &&
    ok "message names the step and the last good checkpoint: $msg" || bad "message: $msg"
W=$T/stop/weights
cmp -s "$W/latest.safetensors" "$W/classification_resnet10_epoch_001.safetensors" &&
    ok "latest checkpoint is epoch 1's, untouched" || bad "latest checkpoint is not epoch 1's"
finite "$W/latest.safetensors" >/dev/null && $DEFT model info -m "$W/latest.safetensors" >/dev/null 2>&1 &&
    ok "latest checkpoint finite and loadable" || bad "latest checkpoint has non-finite tensors or does not load"
train -r "$T/stop" --resume >>"$T/stop.log" 2>&1 && tail -1 "$T/stop/status.json" | grep -q '"epoch":3,' &&
    ok "--resume after the stop completes" || bad "resume after the stop: $(tail -2 "$T/stop.log")"

DEFT_FAULT_NAN_STEP=4 train -r "$T/skip" --set train_config.skip_nonfinite_batches=2 >"$T/skip.log" 2>&1 &&
    ok "skip_nonfinite_batches: training completes" || bad "skip: $(tail -2 "$T/skip.log")"
grep -q "batch skipped (1 of 2 allowed" "$T/skip.log" && ok "skipped batch reported: $(grep -o 'epoch [0-9]*, step [0-9]*: [^;]*' "$T/skip.log" | head -1)" ||
    bad "no skipped-batch message: $(grep -i nan "$T/skip.log" | head -2)"
bad_t=$(finite "$T/skip/weights/latest.safetensors") && ok "weights and BN running stats finite after a skipped NaN batch" ||
    bad "non-finite tensors after skipping: $bad_t"
finish
