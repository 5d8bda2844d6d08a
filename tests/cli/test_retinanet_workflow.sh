#!/bin/sh
# TAO's retinanet through the task layer on the SSD tests' tiny generated KITTI
# set (coloured boxes on noise, 16 train / 6 val images at 128x96), with a small
# FPN (feature_size 32, one subnet conv) so it runs in seconds: --dry_run lists
# the five levels and checks every box has an anchor; train 2 epochs (focal
# loss terms, val mAP); evaluate's mAP == `deft detection score` of inference's
# KITTI output; export --nms onnx in onnxruntime == deft inference (counts,
# classes, boxes, scores); --nms trt as TAO's retinanet exporter writes it
# (the logits, confSigmoid 1) == --nms none through the plugin's reading;
# int8 cal.bin / QDQ and --gen_ds_config; prune --target_ratio 0.5 (shared subnet weights
# pruned as one group per weight), the pruned model evaluates and retrains 1
# epoch; an SSD model or spec given to retinanet exits 2.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
. "$SRC/tests/cli/ssd_fixture.inc"
need_onnx_peers
cat >"$T/rspec.txt" <<EOT
random_seed: 7
retinanet_config {
  aspect_ratios_global: "[1.0, 2.0, 0.5]"
  scales: "[0.2, 0.35, 0.5, 0.7, 0.9, 1.0]"
  two_boxes_for_ar1: false
  variances: "[0.1, 0.1, 0.2, 0.2]"
  arch: "resnet"
  nlayers: 18
  n_kernels: 1
  feature_size: 32
  n_anchor_levels: 2
  focal_loss_alpha: 0.25
  focal_loss_gamma: 2.0
  loss_loc_weight: 1.0
  pos_iou_thresh: 0.4
  neg_iou_thresh: 0.3
}
EOT
sed -n '/^training_config/,$p' "$T/spec.txt" >>"$T/rspec.txt"
$DEFT retinanet train -e "$T/rspec.txt" --dry_run >"$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "0 of [0-9]* training boxes have no anchor" "$T/out" && grep -q "RetinaNet experiment" "$T/out" &&
    [ "$(grep -c '^  layer [0-4] ' "$T/out")" -eq 5 ] && grep -q "6 boxes/cell" "$T/out" &&
    ok "--dry_run: five levels of 2 x 3 anchors per cell, every box has an anchor; exit 0" ||
    { bad "--dry_run (exit $rc)"; cat "$T/out"; }
$DEFT retinanet train -e "$T/rspec.txt" -r "$T/run" --threads 2 >"$T/train.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$T/run/weights/best.safetensors" ] && [ "$(grep -c '"val"' "$T/run/status.json")" -eq 2 ] &&
    head -1 "$T/run/metrics.csv" | grep -q "loss_cls,loss_loc,val_loss,val_mAP" &&
    grep -q "training retinanet-resnet18" "$T/train.log" && ls "$T/run/weights" | grep -q "^retinanet_resnet18_epoch_002" &&
    ok "train 2 epochs: retinanet_resnet18 checkpoints, loss_cls/loss_loc, val mAP" ||
    { bad "train (exit $rc)"; tail -20 "$T/train.log"; }
grep -E "^epoch|loss" "$T/train.log" | head -4
M=$T/run/weights/latest.safetensors
$DEFT retinanet evaluate -e "$T/rspec.txt" -m "$M" --ap_mode integrate >"$T/eval.log" 2>&1 &&
    $DEFT retinanet inference -e "$T/rspec.txt" -m "$M" -i "$T/d/val/images" -l "$T/pred" --json "$T/d.json" \
        --dump_input "$T/dump" >"$T/inf.log" 2>&1 &&
    $DEFT detection score -l "$T/d/val/labels" -p "$T/pred" --ap_mode integrate >"$T/score.log" 2>&1
rc=$?
e=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/eval.log" | grep -oE "[0-9.]+$")
s=$(grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$T/score.log" | grep -oE "[0-9.]+$")
[ $rc -eq 0 ] && [ -n "$e" ] && [ "$e" = "$s" ] && [ "$(ls "$T/pred" | wc -l)" -eq 6 ] &&
    ok "evaluate mAP $e == score of inference's KITTI output $s" ||
    { bad "evaluate/inference/score (exit $rc, '$e' vs '$s')"; cat "$T/eval.log" "$T/inf.log" "$T/score.log" | tail -15; }
# export --nms onnx: onnxruntime on the inputs inference dumped == deft inference
REF="/usr/bin/python3 $SRC/tests/ref/ssd_export_check.py"
ls "$T/d/val/images" | sed 's/\.jpg$//' >"$T/val.txt"
$DEFT retinanet export -m "$M" -e "$T/rspec.txt" -o "$T/r.onnx" --nms onnx >"$T/x.log" 2>&1 &&
        $REF check "$T/r.onnx" num_detections,detection_boxes,detection_scores,detection_classes &&
        $REF stack "$T/dump" "$T/val.txt" "$T/x.npy" &&
        node "$SRC/tests/ref/ort_run.js" "$T/r.onnx" "$T/x.npy" "$T/ort/" &&
        $REF dets "$T/r.onnx" "$T/d.json" "$T/dump" "$T/val.txt" "$T/ort" &&
        ok "export --nms onnx (mbox_conf_sigmoid): onnx.checker, onnxruntime == deft retinanet inference" ||
        { bad "export --nms onnx vs inference"; cat "$T/x.log"; }
# export --nms trt: TAO's retinanet exporter's NMSDynamic_TRT (SSD's attributes but conf_data = the
# mbox_conf logits and confSigmoid 1: the plugin applies the sigmoid, background label 0 of K+1); the
# graph cut before the plugin, read as the plugin reads it, == the --nms none export in onnxruntime
P=$(grep -oE "[0-9]+ priors" "$T/x.log" | head -1 | cut -d' ' -f1)
$DEFT retinanet export -m "$M" -e "$T/rspec.txt" -o "$T/trt.onnx" >"$T/x.log" 2>&1 &&
    $REF trt "$T/trt.onnx" 3 50 0.05 0.5 "$P" sigmoid &&
    ok "--nms trt (default): NMSDynamic_TRT 'NMS' on the logits, confSigmoid 1, TAO's attributes" ||
    { bad "--nms trt"; cat "$T/x.log"; }
$DEFT retinanet export -m "$M" -e "$T/rspec.txt" -o "$T/none.onnx" --nms none >"$T/x.log" 2>&1 &&
    $REF check "$T/none.onnx" boxes,scores && $REF cut "$T/trt.onnx" "$T/cut.onnx" "$T/anchor.npy" &&
    node "$SRC/tests/ref/ort_run.js" "$T/cut.onnx" "$T/x.npy" "$T/ort_cut/" &&
    node "$SRC/tests/ref/ort_run.js" "$T/none.onnx" "$T/x.npy" "$T/ort_none/" &&
    $REF plugin_decode "$T/ort_cut" "$T/anchor.npy" "$T/ort_none" sigmoid &&
    ok "trt graph before the plugin, decoded and sigmoided as the plugin does == --nms none" ||
    { bad "trt cut vs --nms none"; cat "$T/x.log"; }
# int8: cal.bin names == the ONNX's activations (--nms onnx with a QDQ file whose ten regressor convs
# stay float, and the default trt graph with --gen_ds_config: TAO's RetinaNet DeepStream files)
Q=$T/q
$DEFT retinanet export -m "$M" -e "$T/rspec.txt" -o "$Q/m.onnx" --nms onnx --data_type int8 \
    --cal_image_dir "$T/d/train/images" --batches 2 --batch_size 4 --qdq_file "$Q/qdq.onnx" >"$T/x.log" 2>&1 &&
    $REF int8 "$Q/m.onnx" "$Q/cal.bin" "$Q/qdq.onnx" 10 &&
    node "$SRC/tests/ref/ort_run.js" "$Q/qdq.onnx" "$T/x.npy" "$T/ort_q/" && [ -f "$T/ort_q/num_detections.npy" ] &&
    ok "int8 --nms onnx: cal.bin (every activation), the QDQ model with the regressors float runs in onnxruntime" ||
    { bad "int8 --nms onnx"; cat "$T/x.log"; }
Q=$T/q2
$DEFT retinanet export -m "$M" -e "$T/rspec.txt" -o "$Q/m.onnx" --data_type int8 --cal_image_dir "$T/d/train/images" \
    --batches 2 --batch_size 4 --gen_ds_config >"$T/x.log" 2>&1 && $REF int8 "$Q/m.onnx" "$Q/cal.bin" - &&
    grep -qx "output-blob-names=NMS" "$Q/nvinfer_config.txt" &&
    grep -qx "parse-bbox-func-name=NvDsInferParseCustomNMSTLT" "$Q/nvinfer_config.txt" &&
    grep -qx "offsets=103.939;116.779;123.68" "$Q/nvinfer_config.txt" && grep -qx "model-color-format=1" "$Q/nvinfer_config.txt" &&
    grep -qx "infer-dims=3;96;128" "$Q/nvinfer_config.txt" && grep -qx "network-mode=1" "$Q/nvinfer_config.txt" &&
    grep -qx "num-detected-classes=3" "$Q/nvinfer_config.txt" && grep -qx "int8-calib-file=cal.bin" "$Q/nvinfer_config.txt" &&
    grep -qx "onnx-file=m.onnx" "$Q/nvinfer_config.txt" && [ "$(tr '\n' ' ' <"$Q/labels.txt")" = "background blue red " ] &&
    ok "int8 trt + --gen_ds_config: cal.bin names, nvinfer_config.txt (NvDsInferParseCustomNMSTLT, BGR offsets, int8), labels.txt background first" ||
    { bad "int8 trt / --gen_ds_config"; cat "$T/x.log" "$Q/nvinfer_config.txt" "$Q/labels.txt"; }
# prune (the subnets' weights are shared by the five levels: one group each,
# the FPN's P3-P7 equalized as their inputs): half the parameters with the two
# regressors whole; the pruned model evaluates and retrains 1 epoch through
# training_config.pruned_model_path (tests/prune/prune_checks.inc)
. "$SRC/tests/prune/prune_checks.inc"
prune_checks retinanet "$M" "$T/rspec.txt" "retinanet_conf_regressor retinanet_loc_regressor" \
    "training_config.pruned_model_path=$T/pruned.safetensors"
grep -qE "^P3 +conv +32 -> ([0-9]+) " "$T/prune.log" &&
    [ "$(grep -E '^P[3-7] +conv' "$T/prune.log" | awk '{print $5}' | sort -u | wc -l)" -eq 1 ] &&
    ok "P3..P7 (the shared subnets' inputs) keep the same channels: $(grep -E '^P3 ' "$T/prune.log" | awk '{print $3 "->" $5}')" ||
    { bad "P3..P7 equalized"; grep -E "^P[3-7] " "$T/prune.log"; }
expect2() { # name, pattern, deft args...
    name=$1 pat=$2; shift 2
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -qE "$pat" "$T/out" && ok "$name: exit 2" || { bad "$name (exit $rc)"; cat "$T/out"; }
}
expect2 "an ssd spec given to retinanet" "unknown key .ssd_config.*retinanet --help-spec" retinanet train -e "$T/spec.txt" -r "$T/r2"
expect2 "a retinanet model given to ssd" "is a RetinaNet model: run it with deft retinanet" \
    ssd evaluate -e "$T/spec.txt" -m "$M"
sed 's/output_width: 128/output_width: 120/' "$T/rspec.txt" >"$T/w.txt"
expect2 "an input width not a multiple of 32" "rspec|w.txt:[0-9]+.*output_width.*multiples of 32" \
    retinanet train -e "$T/w.txt" --dry_run
finish
