#!/bin/sh
# Accuracy of a deployed YOLOv4 / YOLOv4-tiny (not part of make test): the exported ONNX run
# in onnxruntime-node over the spec's validation images, its detections written as KITTI
# predictions in image pixels and scored by `deft detection score` (TAO's INTEGRATE
# mAP@0.5), next to `deft <net> evaluate` of the model it came from. Users' first complaint
# about deployed detectors is "mAP dropped after export" (detection.md §9): this shows where.
#
#   bench/yolo_onnx_score.sh score MODEL.onnx SPEC OUT_DIR [--inputs DUMP_DIR]
#       one exported model (--nms onnx; float or QDQ). Inputs are made from the model's
#       metadata_props (OpenCV, as a consumer would), or with --inputs taken from
#       `deft <net> inference --dump_input DUMP_DIR` (exactly what deft's own model saw).
#   bench/yolo_onnx_score.sh compare NET MODEL.safetensors SPEC OUT_DIR
#       deft evaluate; export fp32 and INT8 (entropy calibration on the spec's training
#       images, QDQ with the head float); each scored with both inputs; a table.
# Environment: BUILD (default build), THREADS (2), CAL_BATCHES x CAL_BATCH_SIZE (10 x 16, TAO's).
BUILD=${BUILD:-build}
DEFT=$BUILD/deft
THREADS=${THREADS:-2}
HERE=$(dirname "$0")
PY=/usr/bin/python3
mode=$1; shift
map() { grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$1" | grep -oE "[0-9.]+$"; }
score() { # MODEL.onnx SPEC OUT [--inputs DIR]  (sh has no locals: s_ names)
    s_model=$1 s_spec=$2 s_out=$3; shift 3
    rm -rf "$s_out/pred" "$s_out/gt"
    $PY "$HERE/yolo_onnx_score.py" "$s_model" "$s_spec" "$s_out" "$@" &&
        "$DEFT" detection score -l "$s_out/gt" -p "$s_out/pred" --ap_mode integrate -o "$s_out/score.json" \
            >"$s_out/score.log" && cat "$s_out/score.log"
}
case $mode in
score) score "$@" ;;
compare)
    net=$1 model=$2 spec=$3 out=$4
    set -e
    mkdir -p "$out"
    "$DEFT" $net evaluate -e "$spec" -m "$model" --threads $THREADS >"$out/evaluate.log"
    "$DEFT" $net export -e "$spec" -m "$model" -o "$out/fp32.onnx" --nms onnx --threads $THREADS
    "$DEFT" $net export -e "$spec" -m "$model" -o "$out/int8.onnx" --nms onnx --data_type int8 \
        --calibrator entropy --batches ${CAL_BATCHES:-10} --batch_size ${CAL_BATCH_SIZE:-16} --qdq_file "$out/int8_qdq.onnx" --cal_cache_file "$out/cal.bin" --threads $THREADS
    $PY "$HERE/yolo_onnx_score.py" --link_images "$spec" "$out/val_images"
    "$DEFT" $net inference -e "$spec" -m "$model" -i "$out/val_images" --dump_input "$out/inputs" \
        -l "$out/deft_pred" --threads $THREADS >/dev/null
    for m in fp32 int8_qdq; do
        score "$out/$m.onnx" "$spec" "$out/$m.meta" >/dev/null
        score "$out/$m.onnx" "$spec" "$out/$m.dump" --inputs "$out/inputs" >/dev/null
    done
    echo
    echo "mAP@0.5 (TAO INTEGRATE) on the spec's validation images, $(ls "$out/val_images" | wc -l) images"
    printf "  %-52s %s\n" "deft $net evaluate ($model)" "$(map "$out/evaluate.log")"
    for m in fp32 int8_qdq; do
        printf "  %-52s %s\n" "onnxruntime $m.onnx, deft's inputs (--dump_input)" "$(map "$out/$m.dump/score.log")"
        printf "  %-52s %s\n" "onnxruntime $m.onnx, inputs from metadata (OpenCV)" "$(map "$out/$m.meta/score.log")"
    done
    ;;
*) sed -n '2,17p' "$0"; exit 2 ;;
esac
