#!/bin/sh
# `deft faster_rcnn export --nms onnx` of a Faster R-CNN trained here for 2
# epochs on the generated rectangles (frcnn_fixture.inc):
# (a) the ONNX passes onnx.checker (full check): one input 'Input', outputs
#     NMS [N,1,K,7] float and NMS_1 int32, standard ops only (two
#     NonMaxSuppression, RoiAlign for the crop, TopK), metadata;
# (b) onnxruntime-node on the inputs `inference --dump_input` wrote (the 4
#     val images as one batch: dynamic batch) gives deft inference's
#     detections: same count per image, classes, boxes within 0.5 px in image
#     pixels, scores within 1e-4, zero rows after the count. This covers the
#     proposal layer, crop-and-resize as RoiAlign x mask, the per-class decode
#     and NMS; a low confidence keeps many candidates in play;
# (c) --static_batch_size 1 runs image by image with the same detections;
# (d) --nms trt (default): ProposalDynamic -> CropAndResizeDynamic ->
#     NMSDynamic_TRT 'NMS' with TAO's attributes (no TensorRT here: checked by
#     structure); its NmsInputs nodes grafted onto the --nms onnx model (fed
#     the onnx model's proposals as ProposalDynamic's rois) run in
#     onnxruntime, and TensorRT's NMS plugin computed on their loc_data /
#     conf_data (numpy, the node's attributes) gives the --nms onnx rows;
#     --gen_ds_config: nvinfer_config.txt for TAO's NvDsInferParseCustomNMSTLT
#     (BGR offsets, fp16 network-mode), labels.txt with the background last;
# (e) --data_type int8: calibration runs both stages (the proposals on the
#     host between the node ranges, as inference). --nms onnx, min-max over
#     the 4 val images: cal.bin has one line per activation of the network
#     (Input, backbone, RPN, the crop's raw RoiAlign output and the crop, the
#     RCNN body on the crops; not the tails), each a tensor of the ONNX, and
#     each range == max |x| of that tensor when onnxruntime runs the exported
#     graph (its own proposal layer) on the same images; calib.json agrees;
#     the QDQ model (every Conv/Gemm but the 4 head layers quantized) runs in
#     onnxruntime and its detections are compared with the fp32 model's
#     (matched share, box and score differences printed). --nms trt with the
#     default entropy calibrator over 8 training images and --gen_ds_config:
#     cal.bin names the trt graph's tensors (CropAndResizeDynamic's output
#     included), nvinfer_config.txt int8. An empty or missing calibration
#     folder, too few images: exit 2, one line, nothing written;
# (f) bad --nms / --opset exit 2; nothing is written on failure.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
need_onnx_peers
REF="/usr/bin/python3 $SRC/tests/ref/frcnn_export_check.py"
. "$SRC/tests/cli/frcnn_fixture.inc"
$DEFT faster_rcnn train -e "$T/spec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1 ||
    { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
M=$T/run/weights/latest.safetensors
mkdir -p "$T/img"
for s in $(cat "$D/val.txt"); do ln -s "$D/images/$s.png" "$T/img/"; done

$DEFT faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$T/m.onnx" --nms onnx >"$T/x.log" 2>&1 &&
    $REF check "$T/m.onnx" && ok "--nms onnx: checker, input Input, NMS/NMS_1, standard ops, metadata" ||
    { bad "--nms onnx export"; cat "$T/x.log"; }
$DEFT faster_rcnn inference -e "$T/spec.txt" -m "$M" -i "$T/img" --json "$T/d.json" --dump_input "$T/dump" \
    --threshold 0.0001 >"$T/inf.log" 2>&1 && [ "$(ls "$T/dump"/*.npy | wc -l)" -eq 4 ] &&
    ok "inference --dump_input: 4 inputs and letterboxes" || { bad "inference --dump_input"; cat "$T/inf.log"; }
$REF stack "$T/dump" "$D/val.txt" "$T/x.npy" &&
    node "$SRC/tests/ref/ort_run.js" "$T/m.onnx" "$T/x.npy" "$T/ort/" &&
    $REF dets "$T/m.onnx" "$T/d.json" "$T/dump" "$D/val.txt" "$T/ort" &&
    ok "onnxruntime (batch of 4) == deft inference: counts, classes, boxes, scores" || bad "onnxruntime vs deft inference"
$DEFT faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$T/s.onnx" --nms onnx --static_batch_size 1 >"$T/x.log" 2>&1 &&
    ORT_SPLIT=1 node "$SRC/tests/ref/ort_run.js" "$T/s.onnx" "$T/x.npy" "$T/s_nms.npy" &&
    /usr/bin/python3 - "$T/s_nms.npy" "$T/ort/NMS.npy" <<'PY' && ok "--static_batch_size 1, image by image: the same NMS rows" || { bad "static batch"; cat "$T/x.log"; }
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
a[:, 0, :, 0] = b[:, 0, :, 0]  # image ids restart at 0 in each single-image run
assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5, (a.shape, b.shape, np.abs(a - b).max())
PY

# (d) --nms trt
$DEFT faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$T/trt.onnx" >"$T/x.log" 2>&1 &&
    $REF trt "$T/trt.onnx" 20 2 && ok "--nms trt (default): ProposalDynamic, CropAndResizeDynamic, NMSDynamic_TRT, TAO's attributes" ||
    { bad "--nms trt export"; cat "$T/x.log"; }
$REF graft "$T/trt.onnx" "$T/m.onnx" "$T/graft.onnx" &&
    node "$SRC/tests/ref/ort_run.js" "$T/graft.onnx" "$T/x.npy" "$T/ort_g/" &&
    $REF plugin_nms "$T/trt.onnx" "$T/ort_g" &&
    ok "trt NmsInputs in onnxruntime + TensorRT's NMS (numpy) == --nms onnx rows" || bad "trt NmsInputs vs --nms onnx"
mkdir -p "$T/ds"
$DEFT faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$T/ds/m.onnx" --data_type fp16 --gen_ds_config >"$T/x.log" 2>&1 &&
    C=$T/ds/nvinfer_config.txt && grep -qx "onnx-file=m.onnx" "$C" && grep -qx "output-blob-names=NMS" "$C" &&
    grep -qx "parse-bbox-func-name=NvDsInferParseCustomNMSTLT" "$C" && grep -qx "offsets=103.939;116.779;123.68" "$C" &&
    grep -qx "model-color-format=1" "$C" && grep -qx "infer-dims=3;160;208" "$C" && grep -qx "network-mode=2" "$C" &&
    grep -qx "num-detected-classes=3" "$C" && grep -qx "topk=20" "$C" && ! grep -q "int8-calib-file" "$C" &&
    [ "$(tr '\n' ' ' <"$T/ds/labels.txt")" = "green red background " ] &&
    ok "--gen_ds_config: nvinfer_config.txt (NvDsInferParseCustomNMSTLT, BGR offsets, fp16), labels.txt background last" ||
    { bad "--gen_ds_config"; cat "$T/x.log" "$T/ds/nvinfer_config.txt" "$T/ds/labels.txt"; }

# (e) int8
Q=$T/q
mkdir -p "$Q"
$DEFT faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$Q/m.onnx" --nms onnx --data_type int8 --calibrator minmax \
    --cal_image_dir "$T/img" --batches 1 --batch_size 4 --qdq_file "$Q/qdq.onnx" --cal_json_file "$Q/calib.json" \
    >"$T/x.log" 2>&1 && $REF int8 "$Q/m.onnx" "$Q/cal.bin" TRT-8601-MinMaxCalibration "$Q/qdq.onnx" "$Q/calib.json" &&
    ok "int8 --nms onnx: cal.bin every activation of the network (RCNN body on the crops included), QDQ, calib.json" ||
    { bad "int8 --nms onnx export"; cat "$T/x.log"; }
$REF with_outputs "$Q/m.onnx" "$Q/cal.bin" "$Q/all.onnx" && node "$SRC/tests/ref/ort_run.js" "$Q/all.onnx" "$T/x.npy" "$Q/ort/" &&
    $REF ranges "$Q/cal.bin" "$T/x.npy" "$Q/ort" && ok "int8 min-max ranges == onnxruntime's max |x| of every tensor" ||
    bad "int8 ranges vs onnxruntime"
node "$SRC/tests/ref/ort_run.js" "$Q/qdq.onnx" "$T/x.npy" "$Q/ort_q/" && $REF qdq_close "$Q/m.onnx" "$T/ort" "$Q/ort_q" 0.3 &&
    ok "QDQ in onnxruntime: detections close to fp32's" || bad "QDQ vs fp32 detections"
Q=$T/q8
mkdir -p "$Q"
$DEFT faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$Q/m.onnx" --data_type int8 --cal_image_dir "$D/images" \
    --batches 2 --batch_size 4 --gen_ds_config >"$T/x.log" 2>&1 &&
    $REF int8 "$Q/m.onnx" "$Q/cal.bin" TRT-8601-EntropyCalibration2 && grep -qx "network-mode=1" "$Q/nvinfer_config.txt" &&
    grep -qx "int8-calib-file=cal.bin" "$Q/nvinfer_config.txt" &&
    ok "int8 --nms trt (entropy): cal.bin names the trt graph's tensors; nvinfer_config.txt int8" ||
    { bad "int8 --nms trt export"; cat "$T/x.log"; }
E=$T/e
mkdir -p "$E" "$T/empty"
expect2() { # name, deft args...
    name=$1; shift
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && [ "$(grep -c . "$T/out")" -eq 1 ] && [ -z "$(ls "$E")" ] && ok "$name: exit 2, one line, no file" ||
        { bad "$name (exit $rc, files: $(ls "$E"))"; cat "$T/out"; rm -f "$E"/*; }
}
expect2 "int8, empty calibration folder" faster_rcnn export -m "$M" -e "$T/spec.txt" -o "$E/m.onnx" --data_type int8 \
    --cal_image_dir "$T/empty" --qdq_file "$E/q.onnx"
expect2 "int8, missing calibration folder" faster_rcnn export -m "$M" -o "$E/m.onnx" --nms onnx --data_type int8 \
    --cal_image_dir "$T/nowhere" --cal_cache_file "$E/c.bin"
expect2 "int8, too few calibration images" faster_rcnn export -m "$M" -o "$E/m.onnx" --data_type int8 \
    --cal_image_dir "$T/img" --batches 2 --batch_size 4
expect2 "int8 without calibration images" faster_rcnn export -m "$M" -o "$E/m.onnx" --data_type int8

# (f)
expect() { # name, pattern, deft args...
    name=$1 pat=$2; shift 2
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -qE -e "$pat" "$T/out" && [ ! -e "$T/no.onnx" ] && ok "$name: exit 2, $(grep -oE -e "$pat" "$T/out" | head -1)" ||
        { bad "$name (exit $rc)"; cat "$T/out"; }
}
expect "--nms none" "--nms none" faster_rcnn export -m "$M" -o "$T/no.onnx" --nms none
expect "unknown --nms" "--nms 'x'" faster_rcnn export -m "$M" -o "$T/no.onnx" --nms x
expect "--gen_ds_config with --nms onnx" "reads the --nms trt outputs" faster_rcnn export -m "$M" -o "$T/no.onnx" --nms onnx --gen_ds_config
expect "--opset 13" "--opset" faster_rcnn export -m "$M" -o "$T/no.onnx" --nms onnx --opset 13
expect "missing model" "no such model file" faster_rcnn export -m "$T/none.safetensors" -o "$T/no.onnx" --nms onnx
finish
