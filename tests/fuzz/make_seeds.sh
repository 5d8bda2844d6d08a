#!/bin/sh
# make_seeds.sh OUT [DEFT]: seed inputs for every fuzz target, written by the
# real producers: numpy (.npy), torch.save (.pth, zip and legacy), h5py (Keras
# layout), PIL (JPEG/PNG/BMP from ../shared/data photos, shrunk), deft itself
# (model files, graph JSON), and the spec files of specs/ and ../shared/tao_specs.
# tests/fuzz/corpus/<target> holds these merged with what fuzzing added
# (scripts/fuzz.sh with MERGE=1); rerun this after a format change.
set -eu
OUT=${1:?usage: make_seeds.sh OUT [DEFT]}
DEFT=${2:-build/deft}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=$ROOT/../shared
PY=/usr/bin/python3
for t in class_list graph_json image keras_h5 npy prototxt pth safetensors unet_spec yaml_spec; do mkdir -p "$OUT/$t"; done
cp "$ROOT"/specs/*.yaml "$OUT/yaml_spec/"
[ -d "$SHARED/tao_specs" ] && { cp "$SHARED"/tao_specs/*.yaml "$OUT/yaml_spec/"; cp "$SHARED"/tao_specs/*.txt "$OUT/prototxt/"; }
[ -d "$SHARED/tao_specs" ] && cp "$SHARED"/tao_specs/unet_*.txt "$OUT/unet_spec/"
printf 'ants\nbees\n' > "$OUT/class_list/two.txt"
printf '  cat \r\n\n\tdog\r\nbird\n' > "$OUT/class_list/spaces.txt"
printf 'a\nb\na\n' > "$OUT/class_list/dup.txt"
$PY - "$OUT" "$SHARED" <<'PY'
import io, os, struct, sys, json, glob
import numpy as np
out, shared = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(1)
# .npy: every dtype deft reads, a 0-d array, a fortran-order one (refused)
for dt in ("<f4", "<f8", "<f2", "<i8", "<i4", "|u1", "|i1"):
    np.save(f"{out}/npy/{dt[1:]}.npy", (rng.standard_normal((2, 3, 4)) * 10).astype(dt))
np.save(f"{out}/npy/scalar.npy", np.float32(3.5))
np.save(f"{out}/npy/fortran.npy", np.asfortranarray(rng.standard_normal((3, 2)).astype("<f4")))
np.save(f"{out}/npy/empty.npy", np.zeros((0, 4), "<f4"))
# safetensors: hand-written as the format specifies
def st(path, tensors, meta=None):
    h, off, blobs = {}, 0, []
    if meta: h["__metadata__"] = meta
    for name, a in tensors:
        b = a.tobytes(); h[name] = {"dtype": {"float32": "F32", "float16": "F16", "int64": "I64", "uint8": "U8"}[str(a.dtype)],
                                    "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    hj = json.dumps(h).encode(); hj += b" " * (-len(hj) % 8)
    open(path, "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
st(f"{out}/safetensors/small.safetensors", [("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                                           ("conv.bias", np.zeros(4, np.float16)), ("steps", np.arange(3))],
   {"format": "pt"})
st(f"{out}/safetensors/u8.safetensors", [("img", np.arange(12, dtype=np.uint8).reshape(3, 4))])
# images: real photos shrunk, in each format and a few encodings
from PIL import Image
photos = sorted(glob.glob(f"{shared}/data/sample_images/*.jp*g") + glob.glob(f"{shared}/data/sample_images/*.png"))[:3]
for i, p in enumerate(photos):
    im = Image.open(p).convert("RGB"); im.thumbnail((48, 48))
    im.save(f"{out}/image/{i}.jpg", quality=80)
    im.save(f"{out}/image/{i}_progressive.jpg", quality=60, progressive=True)
    im.convert("L").save(f"{out}/image/{i}_gray.jpg")
    im.save(f"{out}/image/{i}.png")
    im.convert("RGBA").save(f"{out}/image/{i}_rgba.png")
    im.convert("P").save(f"{out}/image/{i}_palette.png")
    im.save(f"{out}/image/{i}.bmp")
# Keras HDF5 in TAO's layout (layer_names / weight_names attributes)
import h5py
with h5py.File(f"{out}/keras_h5/weights.h5", "w") as f:
    f.attrs["layer_names"] = np.array([b"conv1", b"bn_conv1", b"predictions"])
    for layer, ws in (("conv1", [("kernel:0", (3, 3, 3, 4)), ("bias:0", (4,))]),
                      ("bn_conv1", [("gamma:0", (4,)), ("beta:0", (4,)), ("moving_mean:0", (4,)), ("moving_variance:0", (4,))]),
                      ("predictions", [("kernel:0", (4, 2)), ("bias:0", (2,))])):
        g = f.create_group(layer)
        g.attrs["weight_names"] = np.array([f"{layer}/{w}".encode() for w, _ in ws])
        for w, shp in ws:
            g.create_dataset(f"{layer}/{w}", data=rng.standard_normal(shp).astype(np.float32))
with h5py.File(f"{out}/keras_h5/model.h5", "w") as f:
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = np.array(["dw"], dtype=h5py.string_dtype())
    g = mw.create_group("dw"); g.attrs["weight_names"] = np.array(["dw/depthwise_kernel:0"], dtype=h5py.string_dtype())
    g.create_dataset("dw/depthwise_kernel:0", data=rng.standard_normal((3, 3, 4, 1)).astype(np.float32))
# torch.save: zip and legacy, a state dict with views and shared storage, a wrapper dict
import torch, collections
base = torch.arange(24, dtype=torch.float32)
sd = collections.OrderedDict([("layer1.0.conv1.weight", torch.randn(4, 3, 3, 3)), ("bn.running_mean", torch.zeros(4)),
                              ("bn.num_batches_tracked", torch.tensor(3)), ("view", base[2:14].view(3, 4)), ("same", base),
                              ("half", torch.randn(5).half()), ("i8", torch.arange(5, dtype=torch.int8))])
torch.save(sd, f"{out}/pth/zip.pth")
torch.save(sd, f"{out}/pth/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "state_dict": {"fc.weight": torch.randn(2, 4), "fc.bias": torch.zeros(2)}}, f"{out}/pth/wrapped.pth")
torch.save({"model": {"module.head.weight": torch.randn(3, 2).t()}}, f"{out}/pth/transposed.pth")
PY
# deft's own files: model files and graph JSON from the small ONNX seeds
if [ -x "$DEFT" ]; then
    for o in "$ROOT"/tests/fuzz/corpus/onnx/*.onnx; do
        n=$(basename "$o" .onnx)
        "$DEFT" model import -i "$o" -o "$OUT/safetensors/$n.safetensors" >/dev/null 2>&1 || continue
        $PY - "$OUT/safetensors/$n.safetensors" "$OUT/graph_json/$n.json" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
open(sys.argv[2], "w").write(json.loads(b[8:8 + n])["__metadata__"]["graph"])
PY
    done
fi
# inputs past libFuzzer's -max_len=65536 would be cut: drop them
find "$OUT" -type f -size +64k -delete
for t in "$OUT"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
