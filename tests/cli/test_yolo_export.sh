#!/bin/sh
# `deft yolo_v4_tiny export` of a YOLOv4-tiny trained here for a few steps on
# a BCCD subset (mish backbone, so the Mish decomposition is exported too):
# (a) --nms onnx passes onnx.checker (full check) and, in onnxruntime-node
#     on the network inputs `inference --dump_input` wrote (one batch of 8,
#     dynamic batch), gives deft inference's detections: same count per
#     image, same classes, boxes within 0.5 px in image pixels (through each
#     image's letterbox), scores within 1e-4;
# (b) --nms trt: the BatchedNMSDynamic_TRT node, TAO's attributes, input
#     'Input', outputs BatchedNMS..BatchedNMS_3 with their types and shapes;
#     the graph cut before the plugin gives exactly the --nms none outputs;
# (c) int8: cal.bin has a line per activation of the ONNX, the QDQ model
#     (head float by default, quantized with --quantize_head) passes the
#     checker and runs; DeepStream files; --help documents the flags;
# (d) bad input (unknown --nms, no nms_config, too few calibration images,
#     missing model, int8 flags without int8) exits 2 and leaves no file; a
#     write failing after the ONNX was written removes it.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/yolo_export_check.py"
need_onnx_peers
B=$(cd "$SHARED/data/bccd" 2>/dev/null && pwd)
[ -n "$B" ] || { echo "SKIP: ../shared/data/bccd not present"; exit 77; }

head -24 "$B/ImageSets/Main/train.txt" >"$T/train.txt"
head -8 "$B/ImageSets/Main/val.txt" >"$T/val.txt"
sed -e "s|\(\.\./\)*shared/data/bccd|$B|g" -e "s|ImageSets/Main/train.txt|X|; s|ImageSets/Main/val.txt|Y|" \
    "$SRC/specs/yolo_v4_tiny_bccd.txt" | sed -e "s|$B/X|$T/train.txt|; s|$B/Y|$T/val.txt|" >"$T/bccd.txt"
# a low learning rate keeps the scores spread out (a blown-up model saturates them at 1.0)
$DEFT yolo_v4_tiny train -e "$T/bccd.txt" -r "$T/run" --threads 2 --set training_config.num_epochs=2 \
    --set augmentation_config.output_width=160 --set augmentation_config.output_height=128 \
    --set yolov4_config.activation=mish \
    --set training_config.learning_rate.soft_start_cosine_annealing_schedule.max_learning_rate=1e-4 \
    >"$T/train.log" 2>&1 || { bad "train"; tail -5 "$T/train.log"; finish; exit 1; }
M=$T/run/weights/latest.safetensors
mkdir -p "$T/img"
for s in $(cat "$T/val.txt"); do ln -s "$B/JPEGImages/$s.jpg" "$T/img/"; done

# (a) --nms onnx against deft inference. conf 0.05 / top_k 50 keeps several hundred candidates
# per image, NMS and the top-k cut over classes at work, with fewer near-equal scores at the cut
NMS="--set nms_config.confidence_threshold=0.05 --set nms_config.top_k=50"
$DEFT yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$T/onnx.onnx" --nms onnx $NMS >"$T/x.log" 2>&1 &&
    $REF check "$T/onnx.onnx" num_detections,detection_boxes,detection_scores,detection_classes &&
    ok "--nms onnx: onnx.checker full_check, input Input, outputs, metadata" || { bad "--nms onnx export"; cat "$T/x.log"; }
$DEFT yolo_v4_tiny inference -e "$T/bccd.txt" -m "$M" -i "$T/img" --json "$T/d.json" --dump_input "$T/dump" $NMS \
    >"$T/inf.log" 2>&1 && [ "$(ls "$T/dump"/*.npy | wc -l)" -eq 8 ] && [ "$(ls "$T/dump"/*.json | wc -l)" -eq 8 ] &&
    ok "inference --dump_input: 8 inputs (.npy) and letterboxes (.json)" || { bad "inference --dump_input"; cat "$T/inf.log"; }
$REF stack "$T/dump" "$T/val.txt" "$T/x.npy" &&
    node "$SRC/tests/ref/ort_run.js" "$T/onnx.onnx" "$T/x.npy" "$T/ort/" &&
    $REF dets "$T/onnx.onnx" "$T/d.json" "$T/dump" "$T/val.txt" "$T/ort" &&
    ok "onnxruntime (batch of 8) == deft inference: counts, classes, boxes, scores" || bad "onnxruntime vs deft inference"

# (b) --nms trt: TAO's plugin node; the graph before it == --nms none
$DEFT yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$T/trt.onnx" >"$T/x.log" 2>&1 &&
    $REF trt "$T/trt.onnx" 3 200 0.001 0.5 300 && ok "--nms trt (default): BatchedNMSDynamic_TRT, TAO's attributes and outputs" ||
    { bad "--nms trt"; cat "$T/x.log"; }
$DEFT yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$T/none.onnx" --nms none >"$T/x.log" 2>&1 &&
    $REF check "$T/none.onnx" boxes,scores && $REF cut "$T/trt.onnx" "$T/cut.onnx" &&
    node "$SRC/tests/ref/ort_run.js" "$T/cut.onnx" "$T/x.npy" "$T/ort_cut/" &&
    node "$SRC/tests/ref/ort_run.js" "$T/none.onnx" "$T/x.npy" "$T/ort_none/" &&
    $REF same_raw "$T/ort_cut" "$T/ort_none" && ok "trt graph cut before the plugin == --nms none outputs" ||
    { bad "trt cut vs --nms none"; cat "$T/x.log"; }

# (c) int8: cache, QDQ (head float by default), DeepStream files
Q=$T/q
mkdir -p "$Q"
$DEFT yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$Q/m.onnx" --nms onnx $NMS --data_type int8 --cal_image_dir "$T/img" \
    --batches 2 --batch_size 4 --qdq_file "$Q/qdq.onnx" >"$T/x.log" 2>&1 &&
    $REF check "$Q/qdq.onnx" num_detections,detection_boxes,detection_scores,detection_classes &&
    node "$SRC/tests/ref/ort_run.js" "$Q/qdq.onnx" "$T/x.npy" "$T/ort_q/" &&
    /usr/bin/python3 - "$Q/m.onnx" "$Q/cal.bin" "$Q/qdq.onnx" "$T/ort_q" <<'EOF' && ok "int8: cal.bin (every activation of the ONNX), QDQ with the head float, runs in onnxruntime" || { bad "int8 export"; cat "$T/x.log"; }
import sys, onnx, numpy as np
m, cal, q, ort = sys.argv[1:]
g = onnx.load(m).graph
acts = ['Input'] + [o for n in g.node if not n.name.startswith('decode/') and not n.name.startswith('nms/')
                    for o in n.output]
lines = open(cal).read().splitlines()
assert lines[0] == 'TRT-8601-EntropyCalibration2', lines[0]
names = [l.rsplit(':', 1)[0] for l in lines[1:]]
assert sorted(names) == sorted(acts), set(names) ^ set(acts)
qg = onnx.load(q).graph
prod = {o: n for n in qg.node for o in n.output}
for n in qg.node:
    if n.op_type == 'Conv' and n.name.startswith('head_'):
        assert prod[n.input[0]].op_type != 'DequantizeLinear' and n.input[1] not in prod, n.name + ' quantized'
    elif n.op_type == 'Conv':
        assert prod[n.input[0]].op_type == 'DequantizeLinear' and prod[n.input[1]].op_type == 'DequantizeLinear', n.name
k = np.load(ort + '/num_detections.npy')
assert k.shape == (8, 1) and k.min() > 0, k.ravel()
print('  cal.bin %d tensors; QDQ: %d convs quantized, heads float; %d detections' %
      (len(names), sum(n.op_type == 'Conv' for n in qg.node) - 2, int(k.sum())))
EOF
$DEFT yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$Q/t.onnx" --data_type int8 --cal_image_dir "$T/img" \
    --batches 2 --batch_size 4 --qdq_file "$Q/tq.onnx" --quantize_head --gen_ds_config --cal_cache_file "$Q/c.bin" >"$T/x.log" 2>&1 &&
    /usr/bin/python3 -c "
import sys, onnx
g = onnx.load(sys.argv[1]).graph
prod = {o: n for n in g.node for o in n.output}
heads = [n for n in g.node if n.op_type == 'Conv' and n.name.startswith('head_')]
assert len(heads) == 2 and all(prod[n.input[0]].op_type == 'DequantizeLinear' for n in heads)" "$Q/tq.onnx" &&
    grep -qx "output-blob-names=BatchedNMS" "$Q/nvinfer_config.txt" &&
    grep -qx "parse-bbox-func-name=NvDsInferParseCustomBatchedNMSTLT" "$Q/nvinfer_config.txt" &&
    grep -qx "offsets=103.939;116.779;123.68" "$Q/nvinfer_config.txt" && grep -qx "model-color-format=1" "$Q/nvinfer_config.txt" &&
    grep -qx "maintain-aspect-ratio=1" "$Q/nvinfer_config.txt" && grep -qx "infer-dims=3;128;160" "$Q/nvinfer_config.txt" &&
    grep -qx "network-mode=1" "$Q/nvinfer_config.txt" && grep -q "^layer-device-precision=head_s32:fp32:gpu;" "$Q/nvinfer_config.txt" &&
    grep -qx "int8-calib-file=$Q/c.bin" "$Q/nvinfer_config.txt" && [ -f "$Q/c.bin" ] &&
    [ "$(cat "$Q/labels.txt" | tr '\n' ' ')" = "platelets rbc wbc " ] &&
    ok "--quantize_head quantizes the head; --gen_ds_config: labels.txt, nvinfer_config.txt (TAO's parser, BGR offsets, letterbox)" ||
    { bad "--quantize_head / --gen_ds_config"; cat "$T/x.log" "$Q/nvinfer_config.txt"; }
$DEFT yolo_v4_tiny export --help >"$T/h.txt" 2>&1
missing=""
for f in --nms --data_type --cal_image_dir --cal_cache_file --batches --batch_size --calibrator --qdq_file \
    --quantize_head --gen_ds_config --static_batch_size BatchedNMSDynamic_TRT NonMaxSuppression Input; do
    grep -q -- "$f" "$T/h.txt" || missing="$missing $f"
done
[ -z "$missing" ] && ok "export --help documents every flag" || bad "export --help lacks:$missing"

# (d) bad input: exit 2, no file
E=$T/e
mkdir -p "$E"
sed '/^nms_config {/,/^}/d' "$T/bccd.txt" >"$T/nonms.txt"
expect2() { # name, deft args...
    name=$1; shift
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && [ "$(grep -c . "$T/out")" -eq 1 ] && [ -z "$(ls "$E")" ] && ok "$name: exit 2, one line, no file" ||
        { bad "$name (exit $rc, files: $(ls "$E"))"; cat "$T/out"; rm -f "$E"/*; }
}
expect2 "unknown --nms" yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$E/m.onnx" --nms fast
expect2 "spec without nms_config" yolo_v4_tiny export -m "$M" -e "$T/nonms.txt" -o "$E/m.onnx" --nms onnx
expect2 "NMS without a spec" yolo_v4_tiny export -m "$M" -o "$E/m.onnx"
expect2 "too few calibration images" yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$E/m.onnx" --data_type int8 \
    --cal_image_dir "$T/img" --batches 3 --batch_size 3 --qdq_file "$E/q.onnx"
expect2 "missing model" yolo_v4_tiny export -m "$T/nope.safetensors" -e "$T/bccd.txt" -o "$E/m.onnx"
expect2 "int8 flags without int8" yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$E/m.onnx" --qdq_file "$E/q.onnx"
expect2 "tiny model on yolo_v4" yolo_v4 export -m "$M" -o "$E/m.onnx" --nms none
expect2 "--gen_ds_config without trt" yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$E/m.onnx" --nms onnx --gen_ds_config
$DEFT yolo_v4_tiny export -m "$M" -e "$T/bccd.txt" -o "$E/m.onnx" --data_type int8 --cal_image_dir "$T/img" \
    --batches 2 --batch_size 4 --cal_cache_file "$E/no/such/dir/cal.bin" >"$T/out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ -z "$(ls "$E")" ] && ok "cal.bin write fails after the ONNX: exit $rc, the ONNX removed" ||
    { bad "failed write (exit $rc, files: $(ls "$E"))"; cat "$T/out"; }
finish
