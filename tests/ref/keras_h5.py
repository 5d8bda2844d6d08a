"""Reference side of test_keras_h5.sh: Keras 2 HDF5 weight files in TAO's
layout, written with h5py from known arrays, and the check of deft's import.

write OUT.h5 EXPECT.npz VARIANT  VARIANT: weights (save_weights layout, fixed-length
                                 strings), model (model.save: model_weights group,
                                 variable-length strings, split layer_names0/1)
notkeras OUT.h5                  a valid HDF5 file that holds no Keras weights
compare OUT.safetensors EXPECT.npz   every tensor identical (names, shapes, values)
"""
import json, struct, sys
import numpy as np
import h5py

rng = np.random.default_rng(7)
def r(*shape):
    return rng.standard_normal(shape).astype(np.float32)

# layer -> [(weight name, Keras array, deft name, deft array)]
conv_k = r(3, 3, 3, 8)
dw_k = r(3, 3, 8, 2)
dense_k = r(16, 5)
inner_k = r(1, 1, 16, 16)
up_k = r(2, 2, 4, 16)     # Conv2DTranspose: [kh, kw, out, in]
layers = [
    ("conv1", [("conv1/kernel:0", conv_k, "conv1.weight", conv_k.transpose(3, 2, 0, 1)),
               ("conv1/bias:0", r(8), "conv1.bias", None)]),
    ("bn_conv1", [("bn_conv1/gamma:0", r(8), "bn_conv1.weight", None),
                  ("bn_conv1/beta:0", r(8), "bn_conv1.bias", None),
                  ("bn_conv1/moving_mean:0", r(8), "bn_conv1.running_mean", None),
                  ("bn_conv1/moving_variance:0", np.abs(r(8)), "bn_conv1.running_var", None)]),
    ("activation_1", []),
    ("dw", [("dw/depthwise_kernel:0", dw_k, "dw.weight",
             dw_k.transpose(2, 3, 0, 1).reshape(16, 1, 3, 3))]),
    ("backbone", [("block_1a_conv_1/kernel:0", inner_k, "block_1a_conv_1.weight",
                   inner_k.transpose(3, 2, 0, 1))]),
    ("up", [("up/kernel:0", up_k, "up.weight", up_k.transpose(3, 2, 0, 1))]),
    ("predictions", [("predictions/kernel:0", dense_k, "predictions.weight", dense_k.T),
                     ("predictions/bias:0", r(5), "predictions.bias", None)]),
]

def strings(names, variable):
    if variable:
        return np.array(names, dtype=h5py.string_dtype("utf-8"))
    return np.array([n.encode() for n in names], dtype="S%d" % max(1, max((len(n) for n in names), default=1)))

cmd = sys.argv[1]
if cmd == "write":
    out, expect, variant = sys.argv[2], sys.argv[3], sys.argv[4]
    model = variant == "model"
    with h5py.File(out, "w") as f:
        g = f
        if model:
            f.attrs["keras_version"] = "2.2.4"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"layers": []}})
            g = f.create_group("model_weights")
        names = [l for l, _ in layers]
        if model:  # Keras splits long attributes into name0, name1, ...
            g.attrs["layer_names0"] = strings(names[:3], True)
            g.attrs["layer_names1"] = strings(names[3:], True)
        else:
            g.attrs["layer_names"] = strings(names, False)
        for lname, ws in layers:
            lg = g.create_group(lname)
            lg.attrs["weight_names"] = strings([w for w, _, _, _ in ws], model)
            for w, arr, _, _ in ws:
                lg.create_dataset(w, data=arr)
    np.savez(expect, **{dn: (da if da is not None else arr) for _, ws in layers for _, arr, dn, da in ws})
elif cmd == "notkeras":
    with h5py.File(sys.argv[2], "w") as f:
        f.create_dataset("data", data=np.zeros((2, 2), np.float32))
elif cmd == "compare":
    with open(sys.argv[2], "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
        data = fh.read()
    exp = np.load(sys.argv[3])
    header.pop("__metadata__", None)
    bad = sorted(set(exp.files) ^ set(header))
    if bad:
        print("names differ:", bad); sys.exit(1)
    for k in exp.files:
        h = header[k]
        if h["dtype"] != "F32":
            print(k, "dtype", h["dtype"]); sys.exit(1)
        a, b = h["data_offsets"]
        got = np.frombuffer(data[a:b], np.float32).reshape(h["shape"])
        if got.shape != exp[k].shape or not np.array_equal(got, exp[k]):
            print(k, "differs", got.shape, exp[k].shape); sys.exit(1)
    print("%d tensors identical" % len(exp.files))
