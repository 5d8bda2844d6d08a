"""Write small ONNX models covering every op deft converts, as fuzz seeds:
make_onnx_seeds.py OUTDIR"""
import os, sys
import numpy as np
import onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
def init(name, *shape):
    return nh.from_array(rng.standard_normal(shape).astype(np.float32), name)
def i64(name, vals):
    return nh.from_array(np.array(vals, np.int64), name)
def save(name, nodes, inits, in_shape, out_shape, opset=13):
    g = h.make_graph(nodes, name, [h.make_tensor_value_info("x", TP.FLOAT, in_shape)],
                     [h.make_tensor_value_info("y", TP.FLOAT, out_shape)], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))

save("conv_bn_relu_pool_gemm", [
    h.make_node("Conv", ["x", "c.w", "c.b"], ["c"], name="/c/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
    h.make_node("BatchNormalization", ["c", "bn.s", "bn.b", "bn.m", "bn.v"], ["b"], name="/bn/BatchNormalization"),
    h.make_node("Relu", ["b"], ["r"]),
    h.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    h.make_node("GlobalAveragePool", ["p"], ["g"]),
    h.make_node("Flatten", ["g"], ["f"], axis=1),
    h.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], transB=1)],
    [init("c.w", 4, 3, 3, 3), init("c.b", 4), init("bn.s", 4), init("bn.b", 4), init("bn.m", 4),
     nh.from_array(np.ones(4, np.float32), "bn.v"), init("fc.w", 5, 4), init("fc.b", 5)],
    [1, 3, 8, 8], [1, 5])
save("concat_add_mul_clip_avgpool", [
    h.make_node("Conv", ["x", "a.w"], ["a"], group=3, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    h.make_node("Sigmoid", ["a"], ["s"]),
    h.make_node("Mul", ["a", "s"], ["m"]),
    h.make_node("Add", ["m", "x"], ["ad"]),
    h.make_node("Clip", ["ad", "lo", "hi"], ["cl"]),
    h.make_node("Concat", ["cl", "x"], ["cc"], axis=1),
    h.make_node("AveragePool", ["cc"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
    h.make_node("Sub", ["ap", "k"], ["sb"]),
    h.make_node("Div", ["sb", "k"], ["y"])],
    [init("a.w", 3, 1, 3, 3), nh.from_array(np.array(0, np.float32), "lo"),
     nh.from_array(np.array(6, np.float32), "hi"), init("k", 6, 1, 1)],
    [1, 3, 8, 8], [1, 6, 8, 8])
save("reshape_matmul_softmax", [
    h.make_node("Reshape", ["x", "shape"], ["r"]),
    h.make_node("MatMul", ["r", "w"], ["mm"]),
    h.make_node("Dropout", ["mm"], ["d"]),
    h.make_node("Identity", ["d"], ["i"]),
    h.make_node("LeakyRelu", ["i"], ["l"], alpha=0.1),
    h.make_node("Softmax", ["l"], ["y"], axis=1)],
    [i64("shape", [0, -1]), init("w", 48, 7)], [2, 3, 4, 4], [2, 7])
save("pad_resize_convtranspose_tanh", [
    h.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
    h.make_node("Resize", ["p", "", "scales"], ["rs"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    h.make_node("ConvTranspose", ["rs", "t.w", "t.b"], ["t"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
    h.make_node("HardSwish", ["t"], ["hs"]),
    h.make_node("Constant", [], ["c"], value=nh.from_array(np.array([0.5], np.float32))),
    h.make_node("Mul", ["hs", "c"], ["y0"]),
    h.make_node("Tanh", ["y0"], ["y"])],
    [i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), nh.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
     init("t.w", 3, 2, 3, 3), init("t.b", 2)], [1, 3, 4, 4], [1, 2, 24, 24], opset=14)

# shape plumbing as exporters write it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
# (folded at import), Split, Squeeze/Unsqueeze, ReduceMean over H and W (both keepdims),
# Sub of two computed values, Gemm with a scalar C, ConvTranspose with auto_pad SAME_UPPER
save("shape_split_reducemean", [
    h.make_node("Shape", ["x"], ["s"]),
    h.make_node("Gather", ["s", "i0"], ["n"], axis=0),
    h.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
    h.make_node("Concat", ["n1", "c6", "c4", "c8"], ["sh"], axis=0),
    h.make_node("Reshape", ["x", "sh"], ["r"]),                  # [1, 6, 4, 8]
    h.make_node("Split", ["r", "sp"], ["a", "b"], axis=1),        # [1, 2, 4, 8] and [1, 4, 4, 8]
    h.make_node("ReduceMean", ["b"], ["m"], axes=[2, 3], keepdims=1),
    h.make_node("Sub", ["b", "m"], ["bc"]),
    h.make_node("Gather", ["bc", "idx"], ["g"], axis=1),          # channels 1, 2 of b
    h.make_node("Add", ["g", "a"], ["ga"]),
    h.make_node("ReduceMean", ["ga"], ["gm"], axes=[-1, -2], keepdims=0),  # [1, 2]
    h.make_node("Unsqueeze", ["gm", "ax2"], ["u"]),               # [1, 2, 1]
    h.make_node("Squeeze", ["u", "ax2"], ["sq"]),                 # [1, 2]
    h.make_node("Gemm", ["sq", "gw", "gc"], ["y"], transB=1)],
    [i64("i0", 0), i64("ax0", [0]), i64("c6", [6]), i64("c4", [4]), i64("c8", [8]), i64("sp", [2, 4]),
     i64("idx", [1, 2]), i64("ax2", [2]), init("gw", 3, 2), nh.from_array(np.array(0.25, np.float32), "gc")],
    [1, 3, 8, 8], [1, 3])
save("convtranspose_same_upper", [
    h.make_node("ConvTranspose", ["x", "t.w"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")],
    [init("t.w", 3, 2, 3, 3)], [1, 3, 5, 5], [1, 2, 10, 10])
# Element-wise math, each op's input inside its domain (softplus > 0 for Sqrt, exp > 0 for Reciprocal)
save("elementwise_math", [
    h.make_node("Elu", ["x"], ["e"], alpha=0.7),
    h.make_node("Softplus", ["e"], ["sp"]),
    h.make_node("Sqrt", ["sp"], ["sq"]),
    h.make_node("Log", ["sq"], ["l"]),
    h.make_node("Neg", ["l"], ["n"]),
    h.make_node("Exp", ["n"], ["ex"]),
    h.make_node("Reciprocal", ["ex"], ["rc"]),
    h.make_node("Softsign", ["rc"], ["ss"]),
    h.make_node("Erf", ["ss"], ["ef"]),
    h.make_node("Sub", ["ef", "x"], ["d"]),
    h.make_node("Abs", ["d"], ["y"])],
    [], [1, 3, 4, 4], [1, 3, 4, 4])
# Mish is opset 18, newer than the checker of Debian's python3-onnx 1.12: saved unchecked
g = h.make_graph([h.make_node("Mish", ["x"], ["y"])], "mish",
                 [h.make_tensor_value_info("x", TP.FLOAT, [1, 3, 4, 4])],
                 [h.make_tensor_value_info("y", TP.FLOAT, [1, 3, 4, 4])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 18)]), os.path.join(out, "mish.onnx"))
# Transpose on activations (deft's transpose op) around a softmax over channels
save("transpose_softmax", [
    h.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
    h.make_node("Softmax", ["t"], ["s"], axis=-1),
    h.make_node("Transpose", ["s"], ["y"], perm=[0, 3, 1, 2])],
    [], [1, 5, 3, 4], [1, 5, 3, 4])
# MatMul of a 3-D activation by a constant (transformer-style tokens x features)
save("matmul_3d_const", [
    h.make_node("MatMul", ["x", "w"], ["y"])],
    [init("w", 6, 5)], [2, 4, 6], [2, 4, 5])
# explicitly quantized (QDQ): int8 activations (zero point 0, int8 and uint8), per-channel int8 weights
def q8(name, vals, dt=np.int8):
    return nh.from_array(np.array(vals, dt), name)
save("qdq_conv", [
    h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
    h.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
    h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
    h.make_node("Conv", ["xd", "wd", "b"], ["c"], pads=[1, 1, 1, 1]),
    h.make_node("Relu", ["c"], ["r"]),
    h.make_node("QuantizeLinear", ["r", "rs", "rz"], ["rq"]),
    h.make_node("DequantizeLinear", ["rq", "rs", "rz"], ["rd"]),
    h.make_node("QuantizeLinear", ["w2", "w2s"], ["w2q"]),
    h.make_node("DequantizeLinear", ["w2q", "w2s"], ["w2d"]),
    h.make_node("Conv", ["rd", "w2d"], ["y"])],
    [q8("xs", 0.02, np.float32), q8("xz", 0), q8("wq", rng.integers(-127, 128, (4, 3, 3, 3))),
     q8("ws", [0.01, 0.02, 0.03, 0.04], np.float32), q8("wz", [0, 0, 0, 0]), init("b", 4),
     q8("rs", 0.05, np.float32), q8("rz", 0, np.uint8), init("w2", 2, 4, 1, 1), q8("w2s", 0.01, np.float32)],
    [1, 3, 8, 8], [1, 2, 8, 8])
print("wrote", len(os.listdir(out)), "seeds to", out)
