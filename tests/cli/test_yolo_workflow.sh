#!/bin/sh
# YOLOv4 through the task layer: TAO's two YOLOv4 specs parse with --dry_run (arch,
# anchors, classes shown); a typo, a wrong type and a syntax error exit 2 with
# file:line; a short YOLOv4-tiny training on a BCCD subset writes the shared
# loop's outputs with the loss terms and val mAP; `inference` KITTI output
# scored by `deft detection score` gives exactly the mAP `evaluate` prints
# (one decode/NMS/letterbox path everywhere); kmeans prints spec lines.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
S=$SHARED/tao_specs
B=$(cd "$SHARED/data/bccd" 2>/dev/null && pwd)
[ -d "$S" ] && [ -n "$B" ] || { echo "SKIP: ../shared (tao_specs, data/bccd) not present"; exit 77; }

for spec in yolo_v4_train_resnet18_kitti.txt:yolo_v4:"arch resnet, nlayers 18" yolo_v4_tiny_train_kitti.txt:yolo_v4_tiny:"arch cspdarknet_tiny"; do
    f=${spec%%:*} rest=${spec#*:} net=${rest%%:*} arch=${rest#*:}
    $DEFT $net train -e "$S/$f" --dry_run >"$T/out" 2>&1
    rc=$?
    # TAO's specs read TFRecords, which deft does not: parsed and printed, and exit 2 since a real run would stop
    [ $rc -eq 2 ] && grep -q "$arch" "$T/out" && grep -q "classes *: 3: car, cyclist, pedestrian" "$T/out" &&
        grep -q "(260.69, 172.35)\|(114.94, 60.67)" "$T/out" && grep -q "a real run would stop here" "$T/out" &&
        ok "$net --dry_run $f: $arch, anchors, classes; exit 2 (tfrecords only)" ||
        { bad "$net --dry_run $f (exit $rc)"; cat "$T/out"; }
done
sed "s|\(\.\./\)*shared/data/bccd|$B|g" "$SRC/specs/yolo_v4_resnet18_bccd.txt" >"$T/bccd_ok.txt"
$DEFT yolo_v4 train -e "$T/bccd_ok.txt" --dry_run >"$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && ! grep -q "would stop" "$T/out" && ok "--dry_run of a spec whose data exists: exit 0" ||
    { bad "--dry_run of a good spec (exit $rc)"; cat "$T/out"; }
expect() { # name, pattern, deft args...
    name=$1 pat=$2; shift 2
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -qE "$pat" "$T/out" && ok "$name: exit 2, $(grep -oE "$pat" "$T/out" | head -1)" ||
        { bad "$name (exit $rc)"; cat "$T/out"; }
}
sed 's/box_matching_iou:/box_matching_io:/' "$S/yolo_v4_train_resnet18_kitti.txt" >"$T/typo.txt"
sed 's/batch_size_per_gpu: 8/batch_size_per_gpu: eight/' "$S/yolo_v4_train_resnet18_kitti.txt" >"$T/type.txt"
sed 's/^yolov4_config {/yolov4_config {{/' "$S/yolo_v4_train_resnet18_kitti.txt" >"$T/syntax.txt"
expect "typo" "typo.txt:[0-9]+:[0-9]+: .*box_matching_io" yolo_v4 train -e "$T/typo.txt" --dry_run
expect "wrong type" "type.txt:[0-9]+:[0-9]+: .*batch_size_per_gpu" yolo_v4 train -e "$T/type.txt" --dry_run
expect "syntax error" "syntax.txt:[0-9]+:[0-9]+:" yolo_v4 train -e "$T/syntax.txt" --dry_run
expect "tiny spec on yolo_v4" "cspdarknet_tiny" yolo_v4 train -e "$S/yolo_v4_tiny_train_kitti.txt" --dry_run
expect "tfrecords only" "label_directory_path" yolo_v4_tiny train -e "$S/yolo_v4_tiny_train_kitti.txt" -r "$T/r0"

# a small BCCD run: 24 train / 8 val images, 2 epochs at 160x128
head -24 "$B/ImageSets/Main/train.txt" >"$T/train.txt"
head -8 "$B/ImageSets/Main/val.txt" >"$T/val.txt"
sed -e "s|\(\.\./\)*shared/data/bccd|$B|g" -e "s|ImageSets/Main/train.txt|X|; s|ImageSets/Main/val.txt|Y|" \
    "$SRC/specs/yolo_v4_tiny_bccd.txt" | sed -e "s|$B/X|$T/train.txt|; s|$B/Y|$T/val.txt|" >"$T/bccd.txt"
$DEFT yolo_v4_tiny train -e "$T/bccd.txt" -r "$T/run" --threads 2 --set training_config.num_epochs=2 \
    --set augmentation_config.output_width=160 --set augmentation_config.output_height=128 >"$T/train.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$T/run/weights/best.safetensors" ] && [ -f "$T/run/weights/latest.safetensors" ] &&
    [ "$(grep -c '"val"' "$T/run/status.json")" -eq 2 ] && head -1 "$T/run/metrics.csv" | grep -q "loss_loc,loss_obj,loss_noobj,loss_cls,val_loss,val_mAP" &&
    [ -f "$T/run/plots/map.svg" ] && ls "$T/run"/events.out.tfevents.* >/dev/null 2>&1 &&
    ok "train 2 epochs: checkpoints, status.json, metrics.csv with loss terms and val mAP, plots, events" ||
    { bad "train (exit $rc)"; tail -20 "$T/train.log"; }
mkdir -p "$T/img" "$T/gt"
for s in $(cat "$T/val.txt"); do ln -s "$B/JPEGImages/$s.jpg" "$T/img/"; cp "$B/labels_kitti/$s.txt" "$T/gt/"; done
M=$T/run/weights/latest.safetensors
$DEFT yolo_v4_tiny evaluate -e "$T/bccd.txt" -m "$M" -r "$T/run" >"$T/eval.log" 2>&1 &&
    $DEFT yolo_v4_tiny inference -e "$T/bccd.txt" -m "$M" -i "$T/img" -l "$T/pred" -o "$T/ann" --json "$T/d.json" >"$T/inf.log" 2>&1 &&
    $DEFT detection score -l "$T/gt" -p "$T/pred" --ap_mode integrate -o "$T/score.json" >"$T/score.log" 2>&1
rc=$?
e=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/eval.log" | grep -oE "[0-9.]+$")
s=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/score.log" | grep -oE "[0-9.]+$")
[ $rc -eq 0 ] && [ -n "$e" ] && [ "$e" = "$s" ] && [ -f "$T/run/evaluate/results.json" ] &&
    [ "$(ls "$T/ann" | wc -l)" -eq 8 ] && [ "$(ls "$T/pred" | wc -l)" -eq 8 ] &&
    ok "evaluate mAP $e == score of inference's KITTI output $s; 8 annotated images, results.json" ||
    { bad "evaluate/inference/score (exit $rc, $e vs $s)"; cat "$T/eval.log" "$T/inf.log" "$T/score.log" 2>/dev/null | tail -12; }
# quantization-aware fine-tuning through the same trainer: one epoch from the float model;
# the three head output convolutions stay float (qat_exclude's default), every other
# convolution's input and weights are fake-quantized, the ranges are in the checkpoint
$DEFT yolo_v4_tiny train -e "$T/bccd.txt" -r "$T/qat" --threads 2 --set training_config.num_epochs=1 \
    --set augmentation_config.output_width=160 --set augmentation_config.output_height=128 \
    --set training_config.enable_qat=true --set training_config.pretrain_model_path="$M" >"$T/qat.log" 2>&1 &&
    $DEFT yolo_v4_tiny evaluate -e "$T/bccd.txt" -m "$T/qat/weights/latest.safetensors" >"$T/qeval.log" 2>&1 &&
    grep -q "^mAP" "$T/qeval.log" && /usr/bin/python3 - "$T/qat/weights/latest.safetensors" <<'PY' &&
import sys, json, struct
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
g = json.loads(h["__metadata__"]["graph"])
out = {o: nd for nd in g["nodes"] for o in nd["outputs"]}
convs = [nd for nd in g["nodes"] if nd["op"] == "conv2d"]
quant = lambda v: v in out and out[v]["op"] == "fake_quant"
heads = [nd for nd in convs if nd["name"].startswith("head_s")]
assert len(heads) == 2 and all(not quant(nd["inputs"][0]) and not quant(nd["inputs"][1]) for nd in heads), "heads float"
assert all(quant(nd["inputs"][0]) and quant(nd["inputs"][1]) for nd in convs if nd not in heads), "the rest quantized"
ranges = [k for k in h if k.endswith(".amax")]
assert ranges and all(struct.unpack("<f", b[8 + n + h[k]["data_offsets"][0]:8 + n + h[k]["data_offsets"][1]])[0] > 0 for k in ranges)
print("  %d convolutions quantized, 2 heads float, %d ranges learned" % (len(convs) - 2, len(ranges)))
PY
    ok "YOLOv4-tiny QAT fine-tune: heads float, ranges in the checkpoint, evaluate runs the QAT graph" ||
    { bad "YOLO QAT"; tail -5 "$T/qat.log"; }
# its INT8 export needs no calibration images: the learned ranges, Q/DQ off the float heads
mkdir -p "$T/qx"
$DEFT yolo_v4_tiny export -e "$T/bccd.txt" -m "$T/qat/weights/latest.safetensors" -o "$T/qx/m.onnx" --nms onnx \
    --data_type int8 --qdq_file "$T/qx/q.onnx" >"$T/qx.log" 2>&1 && grep -q "learned by quantization-aware" "$T/qx.log" &&
    /usr/bin/python3 - "$T/qx/q.onnx" "$T/qx/cal.bin" <<'PY' &&
import sys, onnx
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)
convs = {n.name: n for n in m.graph.node if n.op_type == "Conv"}
deq = {o for n in m.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
heads = [c for k, c in convs.items() if k.startswith("head_s")]
assert len(heads) == 2 and all(c.input[0] not in deq and c.input[1] not in deq for c in heads), "heads float"
assert all(c.input[0] in deq and c.input[1] in deq for k, c in convs.items() if not k.startswith("head_s"))
assert len(open(sys.argv[2]).read().split("\n")) > 40
PY
    ok "YOLOv4-tiny QAT export without calibration images: onnx.checker, heads float, cal.bin" ||
    { bad "YOLO QAT export"; tail -5 "$T/qx.log"; }
$DEFT yolo_v4 kmeans -l "$B/labels_kitti" -i "$B/JPEGImages" -x 416 -y 320 -n 9 >"$T/km.log" 2>&1 &&
    grep -q "big_anchor_shape" "$T/km.log" && grep -q "small_anchor_shape" "$T/km.log" &&
    ok "kmeans: $(grep -oE 'mean IoU [0-9.]+' "$T/km.log")" || { bad "kmeans"; cat "$T/km.log"; }
$DEFT detection score -l "$T/gt" >"$T/out" 2>&1
[ $? -eq 2 ] && ok "score without -p: exit 2" || bad "score without -p"
finish
