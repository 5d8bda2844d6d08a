#!/bin/sh
# int8 engines (`deft model convert --precision int8`, issue 22): the int8
# engine's logits against the fp32 engine's on the sample photos - the
# ImageNet SqueezeNet 1.0 (a trained network: top-1 must agree on every
# photo) and resnet18 / mobilenet_v2 with random weights and perturbed batch
# norm (the residual sum and ReLU6/s8 paths) - within a relative error bound
# (max |int8 - fp32| / max |fp32|). The bounds come from what 8-bit
# per-tensor activations cost and from the peer: onnxruntime running deft's
# own QDQ export with the same cal.bin measured 0.066 (SqueezeNet), 0.028
# (resnet18, 64 px) and 0.029 (mobilenet_v2, 64 px) where the engine measured
# 0.065, 0.030 and 0.011; the test asks for <= 0.10 / 0.05 and, when onnxruntime
# is here, for no more than 1.5x onnxruntime's error + 0.01 on the same
# ranges. A QDQ ONNX (deft's own export) converts to int8 with its own
# ranges and no cal.bin, within the int8 bound of the fp32 engine and of the
# cal.bin engine (they differ where the QDQ graph quantizes less: only
# convolution inputs carry Q/DQ, so the stem's and the last block's outputs
# stay f32, and the linear head's weights are int8-rounded: measured 0.034
# apart at 64 px); an asymmetric activation zero point is refused.
# Also: ranges from cal.bin and from calibrating on images, an int8
# engine on AVX2 (no VNNI: runs, says so), the bench's ISA line, and
# hostile cal.bin files and engines (missing tensor, NaN or negative scale)
# exiting 2 with one line naming the tensor.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy not available"; exit 77; }
IMGS=$SHARED/data/sample_images
SQD=$SHARED/models/squeezenet1_0_imagenet_deepcompression
[ -d "$IMGS" ] || { echo "SKIP: $IMGS missing (../shared)"; exit 77; }
export OMP_NUM_THREADS=2
HAVE_ORT=0
command -v node >/dev/null && [ -d "${DEFT_NODE_MODULES:-$SRC/node_modules}/onnxruntime-node" ] && HAVE_ORT=1
[ $HAVE_ORT = 1 ] || skip_part "onnxruntime-node missing: the int8 engine vs onnxruntime on the QDQ export"
# relerr A.npy B.npy: max|A - B| / max|B|
relerr() { $PY -c "import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); print('%.4f' % (np.abs(a - b).max() / np.abs(b).max()))" "$1" "$2"; }
# agree Q.npy F.npy ERR: every photo whose fp32 top-1 margin exceeds 2 x ERR (of the logits' scale) keeps its class
agree() { $PY -c "
import numpy as np, sys
q, f, e = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
s = np.sort(f, 1); clear = (s[:, -1] - s[:, -2]) / np.abs(f).max() > 2 * e
same = q.argmax(1) == f.argmax(1)
print('%d/%d' % (same.sum(), len(same)))
sys.exit(0 if same[clear].all() else 1)" "$1" "$2" "$3"; }
le() { $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }
expect2() {
    label=$1 pat=$2
    shift 2
    "$@" >$T/out 2>$T/err
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <$T/err)" -eq 1 ] && grep -q "$pat" $T/err; then ok "$label: exit 2, $(cat $T/err)"
    else bad "$label: rc $rc, stderr: $(cat $T/err)"; fi
}

# compare NAME MODEL BOUND CALBIN: fp32 and int8 (cal.bin) engines on the photos; the QDQ peer when here
compare() {
    n=$1 m=$2 bound=$3
    $DEFT model preprocess -m $m -i "$IMGS" -o $T/$n.x.npy >/dev/null &&
        $DEFT model convert -m $m -o $T/$n.f.engine --batch 8 >/dev/null &&
        $DEFT classification export -m $m -o $T/$n.onnx --logits --dynamic_batch --data_type int8 \
            --cal_image_dir "$IMGS" --batches 2 --batch_size 4 --cal_cache_file $T/$n.cal.bin \
            --qdq_file $T/${n}_qdq.onnx >/dev/null 2>&1 &&
        $DEFT model convert -m $m -o $T/$n.q.engine --batch 8 --precision int8 --cal_cache $T/$n.cal.bin >/dev/null 2>&1 &&
        $DEFT model run -m $T/$n.f.engine -i $T/$n.x.npy -o $T/$n.f.npy >/dev/null &&
        $DEFT model run -m $T/$n.q.engine -i $T/$n.x.npy -o $T/$n.q.npy >/dev/null || { bad "$n: setup"; return 1; }
    e=$(relerr $T/$n.q.npy $T/$n.f.npy)
    a=$(agree $T/$n.q.npy $T/$n.f.npy $e) && le $e $bound && ok "$n: int8 (cal.bin) vs fp32 engine: rel. error $e <= $bound, top-1 $a" ||
        bad "$n: int8 vs fp32: rel. error $e (bound $bound), top-1 $a"
    if [ $HAVE_ORT = 1 ]; then
        node "$SRC/tests/ref/ort_run.js" $T/${n}_qdq.onnx $T/$n.x.npy $T/$n.ort.npy >/dev/null 2>&1 || { bad "$n: onnxruntime on the QDQ export"; return 1; }
        o=$(relerr $T/$n.ort.npy $T/$n.f.npy)
        lim=$($PY -c "print('%.4f' % (1.5 * $o + 0.01))")
        le $e $lim && ok "$n: int8 engine error $e <= 1.5 x onnxruntime's on the QDQ export with the same ranges ($o) + 0.01" ||
            bad "$n: int8 engine error $e > $lim (onnxruntime QDQ: $o)"
    fi
}

if [ -f "$SQD/squeezenet1_0_imagenet.pth" ]; then
    $DEFT model import -i "$SQD/squeezenet1_0_imagenet.pth" -o $T/sq.safetensors --arch squeezenet1_0 \
        --class_names "$SQD/imagenet_classes.txt" >/dev/null && compare squeezenet $T/sq.safetensors 0.10
    # a trained network: every photo keeps its ImageNet class
    $PY -c "import numpy as np, sys; sys.exit(0 if (np.load(sys.argv[1]).argmax(1) == np.load(sys.argv[2]).argmax(1)).all() else 1)" \
        $T/squeezenet.q.npy $T/squeezenet.f.npy && ok "squeezenet: int8 top-1 = fp32 top-1 on all 8 photos" || bad "squeezenet: a photo changed class"
else
    skip_part "$SQD missing: the trained SqueezeNet"
fi

for a in resnet18 mobilenet_v2; do
    $DEFT model init --arch $a --size 64 --classes 10 -o $T/$a.safetensors >/dev/null &&
        $PY "$SRC/tests/ref/export_check.py" perturb_bn $T/$a.safetensors && compare $a $T/$a.safetensors 0.05
done

m=$T/resnet18
# an explicitly quantized ONNX: int8 by default, its own ranges
if $PY -c "import onnx" 2>/dev/null; then
    $DEFT model convert -m ${m}_qdq.onnx -o $T/qdq.engine --batch 8 >$T/out 2>&1 && grep -q ": int8, batch 8" $T/out &&
        $DEFT model run -m $T/qdq.engine -i $m.x.npy -o $T/qdq.npy >/dev/null &&
        e=$(relerr $T/qdq.npy $m.q.npy) && le $e 0.05 && f=$(relerr $T/qdq.npy $m.f.npy) && le $f 0.05 &&
        ok "QDQ ONNX -> int8 engine, no cal.bin: vs the cal.bin engine $e, vs fp32 $f" || bad "QDQ engine: $(cat $T/out) ${e:-} ${f:-}"
    $DEFT model convert -m ${m}_qdq.onnx -o $T/qdqf.engine --batch 8 --precision fp32 >$T/out 2>&1 && grep -q ": fp32," $T/out &&
        ok "QDQ ONNX with --precision fp32: a float engine" || bad "QDQ --precision fp32: $(cat $T/out)"
    $PY - ${m}_qdq.onnx $T/asym.onnx <<'PY' &&
import sys, onnx, numpy as np
from onnx import numpy_helper as nh
m = onnx.load(sys.argv[1])
for i, t in enumerate(m.graph.initializer):
    if t.name == "layer1.0.relu1_zero_point":
        m.graph.initializer[i].CopyFrom(nh.from_array(np.array(3, np.int8), t.name))
onnx.save(m, sys.argv[2])
PY
        expect2 "QDQ with an activation zero point 3" "zero point 3.*symmetric" $DEFT model convert -m $T/asym.onnx -o $T/asym.engine
    # a QDQ graph not written by deft (the fuzz seed: int8 and uint8 activations, Q/DQ of float weights
    # in the graph, per-channel int8 weights): the int8 engine vs onnxruntime's integer kernels
    if [ $HAVE_ORT = 1 ]; then
        $PY "$SRC/tests/fuzz/make_onnx_seeds.py" $T/seeds >/dev/null &&
            $DEFT model convert -m $T/seeds/qdq_conv.onnx -o $T/qc.engine >$T/out 2>&1 && grep -q ": int8," $T/out &&
            $PY -c "import numpy as np; np.save('$T/qx.npy', np.random.default_rng(3).uniform(-2, 2, (1, 3, 8, 8)).astype(np.float32))" &&
            $DEFT model run -m $T/qc.engine -i $T/qx.npy -o $T/qc.npy >/dev/null &&
            node "$SRC/tests/ref/ort_run.js" $T/seeds/qdq_conv.onnx $T/qx.npy $T/qco.npy >/dev/null &&
            e=$(relerr $T/qc.npy $T/qco.npy) && le $e 0.02 &&
            ok "hand-written QDQ graph: int8 engine vs onnxruntime $e" || bad "hand-written QDQ: $(cat $T/out) ${e:-}"
    fi
else
    skip_part "python3-onnx missing: the QDQ import"
fi
# ranges from calibrating on images in convert itself (the exports' calibrator, same images: same ranges)
$DEFT model convert -m $m.safetensors -o $T/r.img.engine --batch 8 --precision int8 --cal_image_dir "$IMGS" \
    --batches 2 --batch_size 4 >$T/out 2>&1 && grep -q "calibration pass 2/2" $T/out &&
    $DEFT model run -m $T/r.img.engine -i $m.x.npy -o $T/r.img.npy >/dev/null &&
    e=$(relerr $T/r.img.npy $m.f.npy) && le $e 0.05 && a=$(agree $T/r.img.npy $m.f.npy $e) &&
    ok "resnet18: --cal_image_dir engine: rel. error $e, top-1 $a" || bad "resnet18 --cal_image_dir: $(tail -2 $T/out) ${e:-}"
# an int8 engine runs on the ref backend in f32 (documented): the fp32 engine's logits
$DEFT model run -m $T/resnet18.q.engine -i $T/resnet18.x.npy -o $T/r.ref.npy --backend ref >/dev/null &&
    e=$(relerr $T/r.ref.npy $T/resnet18.f.npy) && le $e 1e-4 && ok "int8 engine on ref = fp32 ($e)" || bad "int8 engine on ref: ${e:-failed}"
# no VNNI: oneDNN's AVX2 int8 kernels, with a message. They multiply with vpmaddubsw, whose 16-bit
# sums would saturate, so oneDNN halves the weights (7 significant bits): about twice the error of
# the VNNI kernels (measured 0.053 vs 0.030). Bound: twice the VNNI bound.
ONEDNN_MAX_CPU_ISA=AVX2 $DEFT model run -m $T/resnet18.q.engine -i $T/resnet18.x.npy -o $T/r.avx2.npy >/dev/null 2>$T/err &&
    grep -q "no VNNI or AMX" $T/err && e=$(relerr $T/r.avx2.npy $T/resnet18.f.npy) && le $e 0.10 &&
    ok "int8 engine with ONEDNN_MAX_CPU_ISA=AVX2: runs, says '$(cut -c1-60 $T/err)...', rel. error $e" || bad "AVX2: $(cat $T/err) ${e:-}"
# the bench names the ISA
$DEFT bench infer -m $T/resnet18.q.engine --steps 2 --warmup 1 >$T/bench 2>&1 && grep -q "^isa: .*int8" $T/bench &&
    tail -1 $T/bench | $PY -c "import json, sys; j = json.loads(sys.stdin.read()); assert j['precision'] == 'int8' and j['isa'] and j['images_per_s'] > 0" &&
    ok "bench infer: $(grep '^isa:' $T/bench)" || bad "bench: $(cat $T/bench)"

# bf16 engines: bf16 convolutions where oneDNN has them (bf16 keeps 8 significant bits: ~0.2% per
# rounding; measured 0.0018 / 0.0019 on resnet18 / mobilenet_v2 at 224), else fp32 with a message
for a in resnet18 mobilenet_v2; do
    $DEFT model convert -m $T/$a.safetensors -o $T/$a.b.engine --batch 8 --precision bf16 >/dev/null &&
        $DEFT model run -m $T/$a.b.engine -i $T/$a.x.npy -o $T/$a.b.npy >/dev/null 2>$T/err || { bad "$a bf16: $(cat $T/err)"; continue; }
    e=$(relerr $T/$a.b.npy $T/$a.f.npy)
    if $DEFT bench infer -m $T/$a.b.engine --steps 1 --warmup 0 2>/dev/null | grep -q "^isa: .*bf16 convolutions"; then
        a8=$(agree $T/$a.b.npy $T/$a.f.npy $e) && le $e 0.01 && $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)" $e &&
            ok "$a: bf16 engine vs fp32: rel. error $e <= 0.01 (and > 0: bf16 ran), top-1 $a8" || bad "$a bf16: rel. error $e"
    else
        le $e 0 && ok "$a: no bf16 here: the bf16 engine ran in fp32" || bad "$a: bf16 fallback differs from fp32 ($e)"
    fi
done
ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI $DEFT model run -m $T/resnet18.b.engine -i $T/resnet18.x.npy -o $T/r.b.vnni.npy >/dev/null 2>$T/err &&
    grep -q "falls back to fp32" $T/err && le "$(relerr $T/r.b.vnni.npy $T/resnet18.f.npy)" 0 &&
    ok "bf16 engine with ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI: $(sed 's/.*engine //' $T/err), outputs = fp32 engine's" || bad "bf16 fallback: $(cat $T/err)"

# hostile cal.bin
cal=$T/resnet18.cal.bin
grep -v "^layer1.0.relu1:" $cal >$T/miss.bin
expect2 "cal.bin without a convolution's input" "layer1.0.relu1" $DEFT model convert -m $m.safetensors -o $T/x.engine --precision int8 --cal_cache $T/miss.bin
sed 's/^layer2.0.relu1: .*/layer2.0.relu1: 7fc00000/' $cal >$T/nan.bin
expect2 "NaN scale" "layer2.0.relu1" $DEFT model convert -m $m.safetensors -o $T/x.engine --precision int8 --cal_cache $T/nan.bin
sed 's/^maxpool: .*/maxpool: bf800000/' $cal >$T/neg.bin
expect2 "negative scale" "'maxpool'.*-1" $DEFT model convert -m $m.safetensors -o $T/x.engine --precision int8 --cal_cache $T/neg.bin
{ cat $cal; echo "this is not a cache line"; } >$T/junk.bin
expect2 "malformed line" "junk.bin:[0-9]*: expected" $DEFT model convert -m $m.safetensors -o $T/x.engine --precision int8 --cal_cache $T/junk.bin
tail -n +2 $cal >$T/nohdr.bin
expect2 "no TRT header" "TRT-" $DEFT model convert -m $m.safetensors -o $T/x.engine --precision int8 --cal_cache $T/nohdr.bin
[ ! -e $T/x.engine ] && ok "refused int8 converts leave no file" || bad "a refused convert left a file"
# hostile act_scales in an int8 engine
rewrite() { $PY "$SRC/tests/ref/engine_meta_edit.py" "$T/resnet18.q.engine" "$1" "$2"; }
rewrite $T/neg.engine "e['act_scales']['layer3.0.relu1'] = -0.5" &&
    expect2 "engine: negative scale" "layer3.0.relu1" $DEFT model run -m $T/neg.engine -i $m.x.npy -o $T/o.npy
rewrite $T/miss.engine "del e['act_scales']['layer4.1.relu1']" &&
    expect2 "engine: a convolution input without a scale" "layer4.1.relu1" $DEFT bench infer -m $T/miss.engine
rewrite $T/none.engine "del e['act_scales']" &&
    expect2 "engine: int8 without act_scales" "act_scales" $DEFT model run -m $T/none.engine -i $m.x.npy -o $T/o.npy
rewrite $T/alien.engine "e['act_scales']['no_such_value'] = 0.1" &&
    expect2 "engine: a scale for an unknown value" "no_such_value" $DEFT model run -m $T/alien.engine -i $m.x.npy -o $T/o.npy
# usage
expect2 "int8 without ranges" "cal_cache" $DEFT model convert -m $m.safetensors -o $T/u.engine --precision int8
expect2 "int8 with both range sources" "one of them" $DEFT model convert -m $m.safetensors -o $T/u.engine --precision int8 --cal_cache $cal --cal_image_dir "$IMGS"
expect2 "--cal_cache on fp32" "need --precision int8" $DEFT model convert -m $m.safetensors -o $T/u.engine --cal_cache $cal
expect2 "--batches without --cal_image_dir" "cal_image_dir" $DEFT model convert -m $m.safetensors -o $T/u.engine --precision int8 --cal_cache $cal --batches 3
finish
