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
print("wrote", len(os.listdir(out)), "seeds to", out)
