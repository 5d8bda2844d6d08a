#!/bin/sh
# INT8 export: calibration over images with the model's preprocessing, every
# calibrator's range recomputed from OpenCV DNN's activations on the same
# images, cal.bin in TensorRT's format (header, one line per activation tensor
# of the ONNX graph, scale = amax / 127 bit for bit), a QDQ ONNX that passes
# onnx.checker and runs in onnxruntime close to the float graph, DeepStream
# files; bad input (missing images, too few, a bad flag) exits 2 and leaves
# no file behind.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/export_check.py"
need_onnx_peers
DATA=$SHARED/data/hymenoptera_256/train
[ -d "$DATA" ] || { echo "SKIP: ../shared/data/hymenoptera_256 not present"; exit 77; }
# 8 calibration images (4 per class, class folders): 2 batches x 4 = all of them
mkdir -p $T/cal/ants $T/cal/bees
for c in ants bees; do ls $DATA/$c | head -4 | while read f; do cp $DATA/$c/$f $T/cal/$c/; done; done
M=$T/m
$DEFT model init --arch resnet18 --size 32 --classes 2 --class_names ants,bees -o $M.safetensors >/dev/null &&
    $REF perturb_bn $M.safetensors || { bad "model"; finish; exit 1; }
$DEFT model preprocess -m $M.safetensors -i $T/cal -o $T/x.npy >/dev/null || bad "preprocess"
for c in entropy minmax percentile; do
    mkdir -p $T/$c
    $DEFT classification export -m $M.safetensors -o $T/$c/m.onnx --data_type int8 --calibrator $c \
        --cal_image_dir $T/cal --batches 2 --batch_size 4 --cal_json_file $T/$c/calib.json \
        --qdq_file $T/$c/m_qdq.onnx --dynamic_batch --gen_ds_config >/dev/null ||
        { bad "$c: export"; continue; }
    $REF calib_ref $T/$c/m.onnx $T/x.npy $T/$c/calib.json $c && ok "$c: every range recomputed from OpenCV's activations" ||
        bad "$c: ranges"
    $REF calcache $T/$c/cal.bin $T/$c/calib.json $T/$c/m.onnx && ok "$c: cal.bin format, scales = amax/127, names = the graph's" ||
        bad "$c: cal.bin"
done
# the QDQ graph: valid ONNX, runs in onnxruntime close to the float graph
/usr/bin/python3 -c "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)
ops = [n.op_type for n in m.graph.node]; assert ops.count('QuantizeLinear') > 10 and ops.count('DequantizeLinear') > 20, ops" $T/entropy/m_qdq.onnx &&
    ok "QDQ ONNX passes onnx.checker" || bad "QDQ checker"
node "$SRC/tests/ref/ort_run.js" $T/entropy/m.onnx $T/x.npy $T/f.npy &&
node "$SRC/tests/ref/ort_run.js" $T/entropy/m_qdq.onnx $T/x.npy $T/q.npy &&
/usr/bin/python3 -c "
import numpy as np, sys
f, q = np.load(sys.argv[1]), np.load(sys.argv[2]); d = float(np.abs(f - q).max())
print('  int8 vs fp32 probabilities: max abs diff %.3g' % d); sys.exit(0 if 0 < d < 0.1 else 1)" $T/f.npy $T/q.npy &&
    ok "QDQ ONNX in onnxruntime: close to the float graph (and not identical)" || bad "QDQ in onnxruntime"
# DeepStream files
grep -qx "ants;bees" $T/entropy/labels.txt &&
    for k in net-scale-factor offsets model-color-format infer-dims onnx-file=m.onnx int8-calib-file=cal.bin \
             labelfile-path=labels.txt network-type=1 num-detected-classes=2 output-blob-names=predictions; do
        grep -q "^$k" $T/entropy/nvinfer_config.txt || { echo "  missing $k"; false; } || break
    done && grep -q "^offsets=123.675;116.28;103.53$" $T/entropy/nvinfer_config.txt &&
    ok "labels.txt and nvinfer_config.txt" || bad "DeepStream files"
# deft reads the exported file back: inference with its recorded classes
$DEFT classification inference -m $T/entropy/m.onnx -i $T/cal/ants -o $T/inf.csv >/dev/null &&
    [ $(grep -c ",ants,\|,bees," $T/inf.csv) -eq 4 ] && ok "deft classification inference -m exported.onnx" ||
    bad "inference on the exported ONNX"
# bad input: exit 2, a one-line message, no file left
mkdir -p $T/bad
try() { # try NAME GREP ARGS...
    n=$1 g=$2; shift 2
    $DEFT classification export -m $M.safetensors -o $T/bad/m.onnx "$@" 2>$T/err >/dev/null
    rc=$?
    [ $rc -eq 2 ] && grep -q "$g" $T/err && [ -z "$(ls $T/bad)" ] && ok "$n: exit 2, nothing written" ||
        { bad "$n (exit $rc, files: $(ls $T/bad))"; cat $T/err; }
}
try "missing calibration dir" "cannot read directory" --data_type int8 --cal_image_dir $T/nowhere
try "fewer images than batches x batch_size" "needs 12 images" --data_type int8 --cal_image_dir $T/cal --batches 3 --batch_size 4
try "int8 without images" "needs calibration images" --data_type int8
try "bad data type" "int4" --data_type int4
try "bad calibrator" "calibrator" --data_type int8 --cal_image_dir $T/cal --calibrator kl
try "cal flags without int8" "need --data_type int8" --qdq_file $T/bad/q.onnx
finish
