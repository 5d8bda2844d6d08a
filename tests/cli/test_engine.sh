#!/bin/sh
# Engines (`deft model convert`, issue 22): an engine's outputs equal the
# unconverted model's - on the reference backend (naive, unfused: the
# oracle) and on the cpu backend - within 1e-4 of the logits' scale, for a
# model file (resnet18, mobilenet_v2, efficientnet_b0: swish and sigmoid
# fused into its convolutions; the fp32 chains in both layouts, blocked and
# nhwc, whichever convert timed faster) and for an ONNX export (against onnxruntime
# when installed); a graph with two outputs gives an engine with both,
# `model run` writing OUT.npy and OUT_<name>.npy, equal to onnxruntime's;
# `deft bench infer -m X.engine` prints the trtexec-like report and the JSON
# line; bad engines (truncated, newer format, hostile sizes, the wrong input)
# give one-line errors and exit 2, a refused convert leaves no file.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
PY=/usr/bin/python3
/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy not available"; exit 77; }
REF="$PY $SRC/tests/ref/export_check.py"
npy() { $PY -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng($2).uniform(-2, 2, ($3)).astype(np.float32))" "$1"; }
# one-line error and exit 2 naming WHAT: expect2 "label" grep-pattern command...
expect2() {
    label=$1 pat=$2
    shift 2
    "$@" >$T/out 2>$T/err
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <$T/err)" -eq 1 ] && grep -q "$pat" $T/err; then ok "$label: exit 2, $(cat $T/err)"
    else bad "$label: rc $rc, stderr: $(cat $T/err)"; fi
}

for as in resnet18:64 mobilenet_v2:64 efficientnet_b0:64; do
    a=${as%:*} s=${as#*:}
    m=$T/$a
    $DEFT model init --arch $a --size $s --classes 7 -o $m.safetensors >/dev/null && $REF perturb_bn $m.safetensors &&
        npy $m.x.npy 1 "2, 3, $s, $s" || { bad "$a: setup"; continue; }
    $DEFT model convert -m $m.safetensors -o $m.engine --batch 2 >$T/out && grep -q "batch 2" $T/out &&
        grep -q "^layout: \(nhwc\|blocked\) (a run took" $T/out &&
        ok "$a: converted: $(cat $T/out | tr '\n' ' ')" || bad "$a: convert: $(cat $T/out)"
    $DEFT model run -m $m.engine -i $m.x.npy -o $m.eng.npy >/dev/null &&
        $DEFT model run -m $m.safetensors -i $m.x.npy -o $m.ref.npy --backend ref >/dev/null &&
        $DEFT model run -m $m.safetensors -i $m.x.npy -o $m.cpu.npy >/dev/null || { bad "$a: runs"; continue; }
    $REF compare $m.eng.npy $m.ref.npy 1e-4 && ok "$a: engine == unconverted model on ref (1e-4)" || bad "$a: engine vs ref"
    $REF compare $m.eng.npy $m.cpu.npy 1e-4 && ok "$a: engine == unconverted model on cpu (1e-4)" || bad "$a: engine vs cpu"
    # both fp32 layouts, whichever convert picked (DEFT_ENGINE_LAYOUT overrides the engine's)
    for lay in blocked nhwc; do
        DEFT_ENGINE_LAYOUT=$lay $DEFT model run -m $m.engine -i $m.x.npy -o $m.$lay.npy >/dev/null &&
            $REF compare $m.$lay.npy $m.ref.npy 1e-4 && ok "$a: engine with $lay chains == ref (1e-4)" || bad "$a: $lay engine vs ref"
    done
done

m=$T/resnet18
# --input_shape: another batch and size; the engine on cpu vs the same engine's graph on ref
$DEFT model convert -m $m.safetensors -o $m.96.engine --input_shape 3x3x96x96 >/dev/null && npy $m.x96.npy 2 "3, 3, 96, 96" &&
    $DEFT model run -m $m.96.engine -i $m.x96.npy -o $m.e96.npy >/dev/null &&
    $DEFT model run -m $m.96.engine -i $m.x96.npy -o $m.r96.npy --backend ref >/dev/null &&
    $PY -c "import numpy as np, sys; assert np.load(sys.argv[1]).shape == (3, 7)" $m.e96.npy &&
    $REF compare $m.e96.npy $m.r96.npy 1e-4 && ok "--input_shape 3x3x96x96: [3, 7] logits, cpu == ref" || bad "--input_shape"

# an ONNX file converts too: the engine vs onnxruntime on the export
if command -v node >/dev/null && [ -d "${DEFT_NODE_MODULES:-$SRC/node_modules}/onnxruntime-node" ] &&
    $PY -c "import onnx" 2>/dev/null; then
    $DEFT classification export -m $m.safetensors -o $m.onnx --logits --dynamic_batch >/dev/null &&
        $DEFT model convert -m $m.onnx -o $m.onnx.engine --batch 2 >/dev/null &&
        $DEFT model run -m $m.onnx.engine -i $m.x.npy -o $m.oe.npy >/dev/null &&
        node "$SRC/tests/ref/ort_run.js" $m.onnx $m.x.npy $m.ort.npy &&
        $REF compare $m.oe.npy $m.ort.npy 1e-4 && ok "ONNX -> engine == onnxruntime on the ONNX (1e-4)" || bad "ONNX engine"
    # two outputs (a detector's heads): both in the engine, in the graph's order
    $PY - $T/two.onnx <<'PY' &&
import sys, numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP
r = np.random.default_rng(5)
w = lambda n, s: nh.from_array(r.normal(0, 0.3, s).astype(np.float32), n)
nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["c1"], ["r1"]),
         h.make_node("Conv", ["r1", "w2"], ["head_a"], strides=[2, 2]),
         h.make_node("Conv", ["r1", "w3"], ["c3"]), h.make_node("Sigmoid", ["c3"], ["head_b"])]
g = h.make_graph(nodes, "two", [h.make_tensor_value_info("x", TP.FLOAT, [2, 3, 16, 16])],
                 [h.make_tensor_value_info("head_a", TP.FLOAT, None), h.make_tensor_value_info("head_b", TP.FLOAT, None)],
                 [w("w1", (8, 3, 3, 3)), w("b1", (8,)), w("w2", (5, 8, 2, 2)), w("w3", (6, 8, 1, 1))])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), sys.argv[1])
PY
        npy $T/two.x.npy 9 "2, 3, 16, 16" && $DEFT model convert -m $T/two.onnx -o $T/two.engine >$T/out &&
        grep -q "outputs 'head_a' \[2, 5, 8, 8\], 'head_b' \[2, 6, 16, 16\]" $T/out &&
        $DEFT model run -m $T/two.engine -i $T/two.x.npy -o $T/two.npy >$T/out2 && grep -q "two_head_b.npy" $T/out2 &&
        mkdir -p $T/two_ort && node "$SRC/tests/ref/ort_run.js" $T/two.onnx $T/two.x.npy $T/two_ort/ &&
        $REF compare $T/two.npy $T/two_ort/head_a.npy 1e-4 && $REF compare $T/two_head_b.npy $T/two_ort/head_b.npy 1e-4 &&
        $DEFT bench infer -m $T/two.engine --steps 2 --warmup 1 >/dev/null &&
        ok "two outputs: $(cat $T/out); both == onnxruntime (1e-4)" || bad "two-output engine: $(cat $T/out $T/out2)"
else
    skip_part "onnxruntime-node or python3-onnx missing: the ONNX engines vs onnxruntime"
fi

# bench: text report and the JSON line (fields of `deft bench` kept)
$DEFT bench infer -m $m.engine --steps 4 --warmup 1 >$T/bench 2>&1 &&
    grep -q "^throughput:" $T/bench && grep -q "p99" $T/bench && grep -q "^first run:" $T/bench &&
    grep -q "^load:" $T/bench && grep -q "^peak RSS:" $T/bench &&
    tail -1 $T/bench | $PY -c "import json, sys; j = json.loads(sys.stdin.read()); assert all(j[k] > 0 for k in ('images_per_s', 'latency_ms', 'peak_rss_mib', 'p50_ms', 'p90_ms', 'p99_ms', 'first_ms', 'load_ms')) and j['batch'] == 2 and j['p50_ms'] <= j['p90_ms'] <= j['p99_ms']" &&
    ok "bench infer -m engine: $(tail -1 $T/bench)" || bad "bench: $(cat $T/bench)"

# bad input
head -c 5000 $m.engine >$T/trunc.engine
expect2 "engine cut in its header" "trunc.engine" $DEFT model run -m $T/trunc.engine -i $m.x.npy -o $T/o.npy
head -c $(($(wc -c <$m.engine) - 1000)) $m.engine >$T/trunc2.engine
expect2 "engine cut in its weights" "trunc2.engine" $DEFT bench infer -m $T/trunc2.engine
# the "engine" metadata entry rewritten: newer format, hostile batch, a shape that is not the graph's
rewrite() { $PY "$SRC/tests/ref/engine_meta_edit.py" "$m.engine" "$1" "$2"; }
rewrite $T/new.engine "e['engine_format'] = 3" && expect2 "newer format" "newer" $DEFT model run -m $T/new.engine -i $m.x.npy -o $T/o.npy
rewrite $T/huge.engine "e['batch'] = 10**12; e['input_shape'][0] = 10**12" &&
    expect2 "hostile batch" "malformed" $DEFT bench infer -m $T/huge.engine
rewrite $T/shape.engine "e['input_shape'][2] = 4096" && expect2 "shape not the graph's" "its graph has" $DEFT model run -m $T/shape.engine -i $m.x.npy -o $T/o.npy
rewrite $T/dup.engine "e['engine_format'] = 2; e['more_outputs'] = [{'name': e['output'], 'shape': e['output_shape']}]" &&
    expect2 "an output named twice" "names output 'fc' twice" $DEFT model run -m $T/dup.engine -i $m.x.npy -o $T/o.npy
rewrite $T/more.engine "e['engine_format'] = 2; e['more_outputs'] = [{'name': 'input_1', 'shape': e['input_shape']}]" &&
    expect2 "an input as an extra output" "is not an output" $DEFT bench infer -m $T/more.engine
rewrite $T/prec.engine "e['precision'] = 'int4'" && expect2 "unknown precision" "int4" $DEFT model run -m $T/prec.engine -i $m.x.npy -o $T/o.npy
# converted on another CPU: runs (weights prepared here) and says so
rewrite $T/cpu.engine "e['cpu'] = 'x86_64 avx2 fma'" &&
    $DEFT model run -m $T/cpu.engine -i $m.x.npy -o $T/cpu.npy >/dev/null 2>$T/err && grep -q "converted on a CPU with 'x86_64 avx2 fma'" $T/err &&
    $REF compare $T/cpu.npy $m.eng.npy 0 >/dev/null && ok "an engine from another CPU runs, same outputs: $(cat $T/err)" || bad "other CPU: $(cat $T/err)"
npy $T/x1.npy 3 "1, 3, 64, 64"
expect2 "wrong batch for the engine" "batch is fixed" $DEFT model run -m $m.engine -i $T/x1.npy -o $T/o.npy
expect2 "bench --batch != engine batch" "fixed at 2" $DEFT bench infer -m $m.engine --batch 4
expect2 "convert an engine" "engine already" $DEFT model convert -m $m.engine -o $T/again.engine
expect2 "--precision int4" "precision" $DEFT model convert -m $m.safetensors -o $T/p.engine --precision int4
expect2 "bad --input_shape" "input_shape" $DEFT model convert -m $m.safetensors -o $T/s.engine --input_shape 1x3x64
expect2 "--input_shape channels" "channels" $DEFT model convert -m $m.safetensors -o $T/c.engine --input_shape 1x4x64x64
[ ! -e $T/again.engine ] && [ ! -e $T/p.engine ] && [ ! -e $T/s.engine ] && [ ! -e $T/c.engine ] &&
    ok "refused converts leave no file" || bad "a refused convert left a file"
finish
