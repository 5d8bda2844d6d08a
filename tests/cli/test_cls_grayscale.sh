#!/bin/sh
# Grey (1-channel) classification end to end, from TAO's protobuf-text spec
# (input_image_size "1,32,32", caffe with image_mean { key: 'l' }): a resnet18
# fine-tuned from a 3-channel deft model for 1 epoch on generated colour images.
#  - the RGB first convolution is summed over its input channels (a one-line notice), and
#    PyTorch agrees that this is the RGB network on the grey image replicated to RGB
#    (the folded conv, and torchvision's resnet18 with either first conv, vs deft's logits);
#  - the model's input is [N,1,H,W]; images are made grey by PIL's convert('L') rule and
#    normalized with the 'l' mean (deft model preprocess vs PIL, 1e-4);
#  - evaluate, inference, export (ONNX input [1,1,H,W], onnx.checker, onnxruntime-node
#    vs deft 1e-4, "channels": 1 in its metadata, inference on the ONNX = on the model),
#    INT8 calibration (cal.bin/calib.json names, QDQ in onnxruntime), DeepStream config
#    (model-color-format=2, infer-dims=1;H;W, one offset), prune + retrain, and
#    `train --data ... --grayscale`;
#  - input_image_size "2,224,224": a one-line error naming file:line, exit 2.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
need_onnx_peers
/usr/bin/python3 -c "import torch, torchvision, PIL" 2>/dev/null || { echo "SKIP: /usr/bin/python3 without torch/torchvision/PIL"; exit 77; }
DEFT=$(cd "$(dirname "$DEFT")" && pwd)/$(basename "$DEFT")
REF="/usr/bin/python3 $SRC/tests/ref/export_check.py"
ORT="node $SRC/tests/ref/ort_run.js"
# two classes told apart by brightness, in colour (so the grey rule matters); training
# images as JPEG of varied sizes, validation as 32x32 PNG (the network size: no resampling)
/usr/bin/python3 - "$T/data" <<'PY' || { bad "generating the images"; finish; exit 1; }
import sys, os, numpy as np
from PIL import Image
rng = np.random.default_rng(5)
for split, n in (("train", 8), ("val", 4)):
    for c, base in (("dark", 80), ("light", 170)):
        os.makedirs(f"{sys.argv[1]}/{split}/{c}")
        for i in range(n):
            h, w = (32, 32) if split == "val" else rng.integers(30, 48, 2)
            tint = rng.uniform(-50, 50, 3)
            a = np.clip(base + tint + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
            ext = "png" if split == "val" else "jpg"
            Image.fromarray(a).save(f"{sys.argv[1]}/{split}/{c}/{i}.{ext}")
PY
cat >"$T/spec.txt" <<EOF
model_config {
  arch: "resnet"
  n_layers: 18
  input_image_size: "1,32,32"
  freeze_blocks: 0
}
train_config {
  train_dataset_path: "$T/data/train"
  val_dataset_path: "$T/data/val"
  pretrained_model_path: "$T/rgb.safetensors"
  optimizer { sgd { lr: 0.01 momentum: 0.9 } }
  batch_size_per_gpu: 4
  n_epochs: 1
  n_workers: 1
  random_seed: 3
  preprocess_mode: "caffe"
  image_mean { key: 'l' value: 117.3 }
  enable_center_crop: False
  reg_config { type: "L2" scope: "Conv2D,Dense" weight_decay: 0.00005 }
  lr_config { step { learning_rate: 0.01 step_size: 10 gamma: 0.1 } }
}
eval_config {
  eval_dataset_path: "$T/data/val"
  top_k: 1
  batch_size: 4
  enable_center_crop: False
}
EOF
# a bad channel count: one line naming the spec's line, exit 2
sed 's/"1,32,32"/"2,224,224"/' "$T/spec.txt" >"$T/bad.txt"
$DEFT classification train -e "$T/bad.txt" -r "$T/badrun" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$T/bad.err")" -eq 1 ] && grep -q "bad.txt:4:[0-9]*: model_config.input_image_size \"2,224,224\"" "$T/bad.err" &&
    ok "input_image_size \"2,224,224\": exit 2, $(cat "$T/bad.err")" || bad "bad channel count: rc $rc, $(cat "$T/bad.err")"
# the 3-channel model whose weights the grey one starts from (BN statistics made non-trivial)
$DEFT model init --arch resnet18 --size 32 --classes 2 --seed 4 -o "$T/rgb.safetensors" >/dev/null 2>&1 &&
    $REF perturb_bn "$T/rgb.safetensors" || bad "model init"
$DEFT classification train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1 ||
    { bad "train: $(tail -3 "$T/train.log")"; finish; exit 1; }
M=$T/run/weights/best.safetensors
grep -q "^pretrained: conv1.weight \[64,3,7,7\] summed over its input channels for the grey input$" "$T/train.log" &&
    grep -q "rgb.safetensors: [0-9]* loaded, 0 shape mismatch, 0 without weights" "$T/train.log" &&
    ok "the RGB conv1 is folded into the grey one, every weight loaded (one-line notice)" ||
    bad "pretrained fold: $(grep -i 'pretrained' "$T/train.log" | head -3)"
grep -q "^pretrained: conv1.weight" "$T/run/deft.log" && ok "the notice is in deft.log" || bad "no fold notice in deft.log"
$DEFT model info -m "$M" >"$T/info" 2>&1 && grep -q "^input: input_1 \[[0-9]*, 1, 32, 32\]$" "$T/info" &&
    ok "the trained model's $(grep '^input:' "$T/info")" || bad "model input: $(head -3 "$T/info")"
# what the network sees: PIL's convert('L') minus the 'l' mean
$DEFT model preprocess -m "$M" -i "$T/data/val" -o "$T/x.npy" --list "$T/x.txt" >"$T/pp.log" 2>&1 || bad "model preprocess: $(cat "$T/pp.log")"
/usr/bin/python3 - "$T" <<'PY' >"$T/pp.cmp" 2>&1 && ok "deft model preprocess = PIL convert('L') - 117.3 ($(cat "$T/pp.cmp"))" || bad "grey preprocessing: $(tail -2 "$T/pp.cmp")"
import sys, numpy as np
from PIL import Image
t = sys.argv[1]
x = np.load(f"{t}/x.npy")
paths = open(f"{t}/x.txt").read().split()
assert x.shape == (len(paths), 1, 32, 32), x.shape
ref = np.stack([np.asarray(Image.open(p).convert("L"), np.float32)[None] - np.float32(117.3) for p in paths])
d = float(np.abs(x - ref).max())
assert d <= 1e-4, d
# not the plain mean of R, G, B: the images are tinted, so the rules differ
avg = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32).mean(2)[None] - 117.3 for p in paths])
assert np.abs(x - avg).max() > 1, "indistinguishable from the RGB mean"
print("%d images [N,1,32,32], max diff %.2g" % (len(paths), d))
PY
$DEFT model run -m "$M" -i "$T/x.npy" -o "$T/deft.npy" >/dev/null 2>&1 || bad "deft model run"
# PyTorch: the grey conv1 is the RGB one summed over its inputs (conv1 is frozen: block 0), the folded
# conv on a grey image is the RGB conv on it replicated, and torchvision's resnet18 with deft's
# weights gives deft's logits with the grey conv1 on x and with the RGB conv1 on x replicated
/usr/bin/python3 - "$T" <<'PY' >"$T/torch.cmp" 2>&1 && ok "PyTorch: $(cat "$T/torch.cmp")" || bad "PyTorch fold reference: $(tail -3 "$T/torch.cmp")"
import sys, json, struct, numpy as np, torch, torchvision
t = sys.argv[1]
def st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(raw[8 + n + b:8 + n + e], "<f4").reshape(v["shape"]).copy())
    return out
rgb, grey = st(f"{t}/rgb.safetensors"), st(f"{t}/run/weights/best.safetensors")
w3, w1 = rgb["conv1.weight"].double(), grey["conv1.weight"].double()
assert w3.shape == (64, 3, 7, 7) and w1.shape == (64, 1, 7, 7), (w3.shape, w1.shape)
dw = float((w1 - w3.sum(1, keepdim=True)).abs().max())
assert dw <= 1e-6, "conv1 is not the summed RGB kernel: %g" % dw
x = torch.from_numpy(np.load(f"{t}/x.npy")).double()
c1 = torch.nn.functional.conv2d(x, w1, stride=2, padding=3)
c3 = torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), w3, stride=2, padding=3)
dc = float((c1 - c3).abs().max() / max(1.0, float(c3.abs().max())))
assert dc <= 1e-4, dc
def net(conv1):
    m = torchvision.models.resnet18(num_classes=2)
    m.conv1 = torch.nn.Conv2d(conv1.shape[1], 64, 7, 2, 3, bias=False)
    sd = dict(grey)
    sd["conv1.weight"] = conv1
    sd = {k: v for k, v in sd.items() if not k.startswith("__")}  # optimizer state
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return m.eval().double()
y = torch.from_numpy(np.load(f"{t}/deft.npy")).double()
with torch.no_grad():
    y1 = net(grey["conv1.weight"])(x)
    y3 = net(rgb["conv1.weight"])(x.repeat(1, 3, 1, 1))
mag = max(1.0, float(y.abs().max()))
d1, d3 = float((y - y1).abs().max()) / mag, float((y - y3).abs().max()) / mag
assert d1 <= 1e-4 and d3 <= 1e-4, (d1, d3)
m = net(grey["conv1.weight"])
torch.save({k: v.float() for k, v in m.state_dict().items()}, f"{t}/grey.pth")  # foreign grey weights
print("conv1 = sum of the RGB kernel (%.1g), folded conv vs RGB conv on replicated grey %.1g, "
      "deft logits vs torchvision grey %.1g / RGB on replicated grey %.1g" % (dw, dc, d1, d3))
PY
# evaluate and inference on the grey model
$DEFT classification evaluate -e "$T/spec.txt" -m "$M" -r "$T/ev" >"$T/eval.log" 2>&1 && [ -s "$T/ev/evaluate/results.json" ] &&
    ok "evaluate: $(grep -i -m1 'top.1\|accuracy' "$T/eval.log")" || bad "evaluate: $(tail -3 "$T/eval.log")"
$DEFT classification inference -m "$M" -i "$T/x.txt" -o "$T/inf.csv" >"$T/inf.log" 2>&1 && [ "$(wc -l <"$T/inf.csv")" -eq 9 ] &&
    ok "inference: 8 images classified" || bad "inference: $(tail -3 "$T/inf.log")"
# foreign weights with a one-channel first convolution (a torchvision .pth) run as a grey model
$DEFT model import -i "$T/grey.pth" --arch resnet18 -o "$T/imp.safetensors" >"$T/imp.log" 2>&1 &&
    $DEFT model info -m "$T/imp.safetensors" 2>&1 | grep -q "^input: input_1 \[1, 1, 224, 224\]$" &&
    $DEFT classification inference -m "$T/grey.pth" --arch resnet18 --class_names dark,light -i "$T/x.txt" \
        -o "$T/pth.csv" >"$T/pth.log" 2>&1 && [ "$(wc -l <"$T/pth.csv")" -eq 9 ] &&
    ok "a grey .pth: imported with a [1, 1, 224, 224] input, inference -m x.pth --arch runs it" ||
    bad "grey .pth: $(tail -2 "$T/imp.log" "$T/pth.log" 2>/dev/null)"
# float ONNX: [1,1,32,32] input, checker, onnxruntime = deft
$DEFT classification export -m "$M" -o "$T/onnx/g.onnx" --logits --dynamic_batch >"$T/exp.log" 2>&1 && $REF check "$T/onnx/g.onnx" >/dev/null 2>&1 &&
    ok "export: onnx.checker passes" || bad "export: $(tail -3 "$T/exp.log")"
/usr/bin/python3 - "$T/onnx/g.onnx" <<'PY' >"$T/in.txt" 2>&1 && ok "ONNX input $(cat "$T/in.txt")" || bad "ONNX input/metadata: $(cat "$T/in.txt")"
import sys, json, onnx
m = onnx.load(sys.argv[1])
d = [x.dim_value or x.dim_param for x in m.graph.input[0].type.tensor_type.shape.dim]
assert d[1:] == [1, 32, 32] and len(d) == 4, d
meta = {p.key: p.value for p in m.metadata_props}
pre = json.loads(meta["preprocess"])
assert pre["channels"] == 1 and pre["channel_order"] == "gray" and len(pre["mean"]) == 1 and \
    abs(pre["mean"][0] - 117.3) < 1e-4, pre
print("%s, preprocess metadata %s" % (d, meta["preprocess"]))
PY
$ORT "$T/onnx/g.onnx" "$T/x.npy" "$T/ort.npy" 2>"$T/ort.err" && $REF compare "$T/deft.npy" "$T/ort.npy" 1e-4 >"$T/c1" &&
    ok "onnxruntime-node on the grey ONNX = deft ($(cat "$T/c1"))" || bad "onnxruntime: $(cat "$T/ort.err" "$T/c1" 2>/dev/null)"
$DEFT classification inference -m "$T/onnx/g.onnx" -i "$T/x.txt" -o "$T/inf_onnx.csv" >"$T/infx.log" 2>&1 &&
    /usr/bin/python3 - "$T/inf.csv" "$T/inf_onnx.csv" <<'PY' && ok "inference on the exported ONNX = on the model" || bad "inference on the ONNX: $(tail -2 "$T/infx.log")"
import sys, csv
a, b = (list(csv.reader(open(f))) for f in sys.argv[1:3])
assert len(a) == len(b) == 9 and all(x[:2] == y[:2] and abs(float(x[2]) - float(y[2])) < 1e-4 for x, y in zip(a[1:], b[1:])), (a, b)
PY
# INT8: calibration on grey images, cal.bin/calib.json, QDQ ONNX in onnxruntime, DeepStream GRAY config
$DEFT classification export -m "$M" -o "$T/i8/g.onnx" --logits --dynamic_batch --data_type int8 --cal_image_dir "$T/data/train" \
    --batches 2 --batch_size 4 --cal_json_file "$T/i8/calib.json" --qdq_file "$T/i8/q.onnx" --gen_ds_config >"$T/i8.log" 2>&1 &&
    $REF calcache "$T/i8/cal.bin" "$T/i8/calib.json" "$T/i8/g.onnx" >"$T/cc" 2>&1 &&
    ok "int8: cal.bin and calib.json name the grey graph's tensors ($(tail -1 "$T/cc"))" || bad "int8 export: $(tail -3 "$T/i8.log"; cat "$T/cc")"
ORT_OPT=disabled $ORT "$T/i8/q.onnx" "$T/x.npy" "$T/q8.npy" 2>"$T/q.err" && /usr/bin/python3 -c "
import sys, numpy as np
f, q = np.load('$T/deft.npy'), np.load('$T/q8.npy')
d = np.abs(f - q).max() / max(1.0, np.abs(f).max())
print('logits within %.3f of the scale' % d)
sys.exit(0 if q.shape == f.shape and d < 0.25 else 1)" >"$T/qq" && ok "QDQ ONNX in onnxruntime: $(cat "$T/qq")" || bad "QDQ: $(cat "$T/q.err" "$T/qq" 2>/dev/null)"
/usr/bin/python3 - "$T/i8" <<'PY' >"$T/ds" 2>&1 && ok "DeepStream: $(cat "$T/ds")" || bad "nvinfer_config.txt: $(cat "$T/ds")"
import sys
d = sys.argv[1]
kv = dict(l.strip().split("=", 1) for l in open(d + "/nvinfer_config.txt") if "=" in l and not l.startswith("#"))
want = {"model-color-format": "2", "infer-dims": "1;32;32", "offsets": "117.3", "net-scale-factor": "1",
        "network-type": "1", "int8-calib-file": "cal.bin", "onnx-file": "g.onnx"}
for k, v in want.items():
    assert kv.get(k) == v, (k, kv.get(k))
print(", ".join("%s=%s" % (k, kv[k]) for k in ("model-color-format", "infer-dims", "offsets")))
PY
# prune the grey model, evaluate it, retrain it, export it
$DEFT classification prune -m "$M" -o "$T/pruned.safetensors" --target_ratio 0.5 >"$T/prune.log" 2>&1 &&
    $DEFT classification evaluate -e "$T/spec.txt" -m "$T/pruned.safetensors" >"$T/pe.log" 2>&1 &&
    ok "prune --target_ratio 0.5 and evaluate the pruned grey model" || bad "prune: $(tail -3 "$T/prune.log" "$T/pe.log" 2>/dev/null)"
$DEFT classification train -e "$T/spec.txt" -r "$T/re" --threads 2 --set train_config.pretrained_model_path= \
    --set train_config.pruned_model_path="$T/pruned.safetensors" >"$T/re.log" 2>&1 &&
    grep -q "pruned.safetensors: [0-9]* loaded, 0 shape mismatch, 0 without weights" "$T/re.log" &&
    ok "retraining the pruned grey model loads every weight" || bad "retrain pruned: $(tail -3 "$T/re.log")"
$DEFT classification export -m "$T/pruned.safetensors" -o "$T/pr/p.onnx" --logits --dynamic_batch >/dev/null 2>&1 &&
    $DEFT model run -m "$T/pruned.safetensors" -i "$T/x.npy" -o "$T/pd.npy" >/dev/null 2>&1 &&
    $ORT "$T/pr/p.onnx" "$T/x.npy" "$T/po.npy" 2>/dev/null && $REF compare "$T/pd.npy" "$T/po.npy" 1e-4 >"$T/c2" &&
    ok "the pruned grey model exports: onnxruntime = deft ($(cat "$T/c2"))" || bad "pruned export: $(cat "$T/c2" 2>/dev/null)"
# the RGB model (3 channels) cannot be retrained as the grey spec's graph
$DEFT classification train -e "$T/spec.txt" -r "$T/mix" --set train_config.pretrained_model_path= \
    --set train_config.pruned_model_path="$T/rgb.safetensors" >"$T/mix.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "3-channel images, not 1" "$T/mix.log" && ok "a 3-channel graph under a grey spec is refused" ||
    bad "3-channel graph, grey spec: rc $rc, $(tail -2 "$T/mix.log")"
# no spec: --grayscale
(cd "$T" && $DEFT classification train --data "$T/data/train" --val "$T/data/val" --arch resnet10 --epochs 1 --batch 4 \
    --size 32 --grayscale --threads 2 -r "$T/qs" >"$T/qs.log" 2>&1) && grep -q 'input_image_size: "1,32,32"' "$T/qs.log" &&
    $DEFT model info -m "$T/qs/weights/best.safetensors" 2>&1 | grep -q "^input: input_1 \[[0-9]*, 1, 32, 32\]$" &&
    ok "train --data --grayscale: a grey model from flags alone" || bad "--grayscale: $(tail -3 "$T/qs.log")"
finish
