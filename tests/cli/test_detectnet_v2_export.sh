#!/bin/sh
# `deft detectnet_v2 export` of a DetectNet_v2 (resnet10) trained here for 2 epochs on the
# workflow test's tiny generated data (tests/cli/dnv2_fixture.inc, 160x128, 2 classes):
# (a) the ONNX passes onnx.checker (full check) with TAO's names (input_1, output_cov/Sigmoid,
#     output_bbox/BiasAdd), dynamic batch or --static_batch_size; onnxruntime-node on the inputs
#     `detectnet_v2 inference --dump_input` wrote (one batch of 6) gives the raw maps of
#     `--dump_raw` within 1e-4;
# (b) --data_type int8: cal.bin has a line per activation tensor of the ONNX;
#     --gen_ds_config: nvinfer_config.txt keys (blob names, network-type, classes, scale and
#     offsets, cluster-mode from clustering_algorithm, [class-attrs-N] from the spec) and labels.txt;
# (c) bad input exits 2, one line, no file.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/dnv2_fixture.inc"
need_onnx_peers
REF="/usr/bin/python3 $SRC/tests/ref/dnv2_export_check.py"
$D train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1 || { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
M=$T/run/weights/latest.safetensors
ls "$T/toy/val/images" | sed 's/\.[a-z]*$//' >"$T/val.txt"

# (a) raw maps: onnxruntime == deft inference
$D inference -e "$T/spec.txt" -m "$M" -i "$T/toy/val/images" -o "$T/inf" --dump_input "$T/dump" --dump_raw "$T/raw" \
    >"$T/inf.log" 2>&1 && [ "$(ls "$T/dump"/*.npy | wc -l)" -eq 6 ] && [ "$(ls "$T/raw"/*_cov.npy | wc -l)" -eq 6 ] &&
    ok "inference --dump_input / --dump_raw: 6 inputs, 6 cov and bbox maps" || { bad "inference dumps"; cat "$T/inf.log"; }
$REF stack "$T/dump" "$T/val.txt" "$T/x.npy" || bad "stack inputs"
$DEFT detectnet_v2 export -m "$M" -e "$T/spec.txt" -o "$T/m.onnx" >"$T/x.log" 2>&1 && $REF check "$T/m.onnx" 2 dyn &&
    ok "export: onnx.checker, input_1 and TAO's output names, dynamic batch, metadata" || { bad "export"; cat "$T/x.log"; }
node "$SRC/tests/ref/ort_run.js" "$T/m.onnx" "$T/x.npy" "$T/ort/" && $REF raw "$T/ort" "$T/raw" "$T/val.txt" 1e-4 &&
    ok "onnxruntime (batch of 6) == deft inference's raw maps within 1e-4" || bad "onnxruntime vs deft raw maps"
$DEFT detectnet_v2 export -m "$M" -o "$T/s.onnx" --static_batch_size 6 >"$T/x.log" 2>&1 && $REF check "$T/s.onnx" 2 6 &&
    node "$SRC/tests/ref/ort_run.js" "$T/s.onnx" "$T/x.npy" "$T/ort_s/" && $REF raw "$T/ort_s" "$T/raw" "$T/val.txt" 1e-4 &&
    ok "--static_batch_size 6 (no spec): batch fixed, same maps" || { bad "--static_batch_size"; cat "$T/x.log"; }

# (b) int8 and DeepStream
ini() { # FILE SECTION KEY: the value of KEY in [SECTION]
    awk -F= -v s="[$2]" -v k="$3" '/^\[/ { on = ($0 == s) } on && $1 == k { print substr($0, length(k) + 2) }' "$1"
}
Q=$T/q
mkdir -p "$Q"
$DEFT detectnet_v2 export -m "$M" -e "$T/spec.txt" -o "$Q/m.onnx" --data_type int8 --batches 2 --batch_size 4 \
    --gen_ds_config >"$T/x.log" 2>&1 && $REF int8 "$Q/m.onnx" "$Q/cal.bin" &&
    ok "int8 (the spec's training images): cal.bin has every activation of the ONNX" || { bad "int8"; cat "$T/x.log"; }
C=$Q/nvinfer_config.txt
p() { ini "$C" property "$1"; }
a() { ini "$C" "class-attrs-$1" "$2"; }
[ "$(p output-blob-names)" = "output_cov/Sigmoid;output_bbox/BiasAdd" ] && [ "$(p network-type)" = 0 ] &&
    [ "$(p num-detected-classes)" = 2 ] && [ "$(p net-scale-factor)" = 0.00392156863 ] && [ "$(p offsets)" = "0;0;0" ] &&
    [ "$(p model-color-format)" = 0 ] && [ "$(p infer-dims)" = "3;128;160" ] && [ "$(p network-mode)" = 1 ] &&
    [ "$(p int8-calib-file)" = cal.bin ] && [ "$(p onnx-file)" = m.onnx ] && [ "$(p cluster-mode)" = 1 ] &&
    [ "$(a 0 pre-cluster-threshold)" = 0.005 ] && [ "$(a 0 eps)" = 0.3 ] && [ "$(a 0 minBoxes)" = 1 ] &&
    [ "$(a 0 dbscan-min-score)" = 0.1 ] && [ "$(a 0 detected-min-h)" = 4 ] &&
    [ "$(a 1 pre-cluster-threshold)" = 0.005 ] && [ "$(a 1 nms-iou-threshold)" = 0.3 ] &&
    [ "$(a 1 post-cluster-threshold)" = 0.05 ] && [ "$(tr '\n' ' ' <"$Q/labels.txt")" = "square block " ] &&
    grep -q "mixes DBSCAN and NMS" "$T/x.log" &&
    ok "--gen_ds_config: TAO's blob names, 1/255 RGB, int8, DBSCAN (mixed spec: warned), class-attrs per class" ||
    { bad "--gen_ds_config"; cat "$C" "$Q/labels.txt"; }
sed 's/clustering_algorithm: DBSCAN/clustering_algorithm: NMS/; s/nms_iou_threshold: 0.3/nms_iou_threshold: 0.45/' \
    "$T/spec.txt" >"$T/nms.txt"
mkdir -p "$T/q2"
$DEFT detectnet_v2 export -m "$M" -e "$T/nms.txt" -o "$T/q2/m.onnx" --gen_ds_config --data_type fp16 >"$T/x.log" 2>&1 &&
    C=$T/q2/nvinfer_config.txt && [ "$(p cluster-mode)" = 2 ] && [ "$(p network-mode)" = 2 ] &&
    [ -z "$(p int8-calib-file)" ] && [ "$(a 1 nms-iou-threshold)" = 0.45 ] && [ ! -f "$T/q2/cal.bin" ] &&
    ok "--gen_ds_config, NMS classes, fp16: cluster-mode 2, network-mode 2, the spec's nms_iou_threshold" ||
    { bad "--gen_ds_config NMS"; cat "$T/x.log" "$C"; }
$DEFT detectnet_v2 export --help >"$T/h.txt" 2>&1
missing=""
for f in --data_type --cal_image_dir --cal_cache_file --batches --batch_size --gen_ds_config --static_batch_size \
    input_1 output_cov/Sigmoid output_bbox/BiasAdd; do
    grep -q -- "$f" "$T/h.txt" || missing="$missing $f"
done
[ -z "$missing" ] && ok "export --help documents every flag" || bad "export --help lacks:$missing"

# (c) bad input: exit 2, one line, no file
E=$T/e
mkdir -p "$E"
expect2() { # name, deft args...
    name=$1; shift
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && [ "$(grep -c . "$T/out")" -eq 1 ] && [ -z "$(ls "$E")" ] && ok "$name: exit 2, one line, no file" ||
        { bad "$name (exit $rc, files: $(ls "$E"))"; cat "$T/out"; rm -f "$E"/*; }
}
expect2 "--gen_ds_config without a spec" detectnet_v2 export -m "$M" -o "$E/m.onnx" --gen_ds_config
expect2 "too few calibration images" detectnet_v2 export -m "$M" -e "$T/spec.txt" -o "$E/m.onnx" --data_type int8 \
    --cal_image_dir "$T/toy/val/images" --batches 2 --batch_size 4
expect2 "int8 without images" detectnet_v2 export -m "$M" -o "$E/m.onnx" --data_type int8
expect2 "missing model" detectnet_v2 export -m "$T/nope.safetensors" -o "$E/m.onnx"
expect2 "int8 flags without int8" detectnet_v2 export -m "$M" -o "$E/m.onnx" --batches 2
expect2 "bad --data_type" detectnet_v2 export -m "$M" -o "$E/m.onnx" --data_type int4
expect2 "calibration_tensorfile (not finished)" detectnet_v2 calibration_tensorfile -e "$T/spec.txt" -o "$E/t"
finish
