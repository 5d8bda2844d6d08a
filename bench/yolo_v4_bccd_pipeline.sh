#!/bin/sh
# TAO's YOLOv4 workflow end to end on BCCD (an accuracy run, not part of make test):
#   1. train YOLOv4-ResNet18 (specs/yolo_v4_resnet18_bccd.txt)       -> R/train
#   2. evaluate its best checkpoint
#   3. prune to half the parameters (PRUNE_FLAGS)                     -> R/pruned.safetensors
#   4. retrain the pruned model with the same spec (pruned_model_path) -> R/retrain
#   5. quantization-aware fine-tune of the retrained model (enable_qat, QAT_EPOCHS at
#      QAT_LR; the last epoch is measured, not the best on validation) -> R/qat
#   6. export: the retrained model as FP32 ONNX and as INT8 QDQ (post-training,
#      entropy calibration on training images, heads float), the QAT model as INT8 QDQ
#      from its learned ranges (no calibration images); all with --nms onnx
#   7. every ONNX run in onnxruntime over the validation images, inputs made from the
#      ONNX metadata with OpenCV (what a deployment does), scored by `deft detection score`
# and prints one table: parameters, FLOPs per image, batch-1 latency (deft for deft
# models, onnxruntime for ONNX files, same run, same threads) and mAP@0.5 (TAO INTEGRATE).
#
#   sh bench/yolo_v4_bccd_pipeline.sh [RESULTS_DIR]       (default runs/yolo_v4_bccd_pipeline)
# Environment:
#   SPEC (specs/yolo_v4_resnet18_bccd.txt), NET (yolo_v4), THREADS (2)
#   EPOCHS / RETRAIN_EPOCHS: override the spec's num_epochs for steps 1 / 4
#   PRUNE_FLAGS ("-nf 64 -el yolo_conv5_6.conv --target_ratio 0.5"; TAO's defaults with
#     -nf 16 starve the neck: see the README's pruning figures)
#   QAT_EPOCHS (10), QAT_LR (1e-4)
#   MODEL=FILE skips step 1 (a trained model); RETRAINED=FILE skips steps 3-4
#   (PRUNED=FILE then names the pruned model it was retrained from, for its row)
# A step that fails stops the script and names its log under RESULTS_DIR.
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
NET=${NET:-yolo_v4}
SPEC=${SPEC:-specs/yolo_v4_resnet18_bccd.txt}
THREADS=${THREADS:-2}
PRUNE_FLAGS=${PRUNE_FLAGS:--nf 64 -el yolo_conv5_6.conv --target_ratio 0.5}
QAT_EPOCHS=${QAT_EPOCHS:-10}
QAT_LR=${QAT_LR:-1e-4}
R=${1:-runs/yolo_v4_bccd_pipeline}
[ -d ../shared/data/bccd ] || { echo "no ../shared/data/bccd: nothing to run"; exit 77; }
[ -x "$DEFT" ] || { echo "no $DEFT: run make first"; exit 1; }
mkdir -p "$R" || exit 1
EP=training_config.num_epochs
run() { # run LOG CMD...: a step, its output in R/LOG
    log=$1; shift
    echo "== $log: $*"
    "$@" >"$R/$log" 2>&1 || { echo "step failed: see $R/$log"; tail -5 "$R/$log"; exit 1; }
}
map() { grep -oE "^mAP \[integrate, IoU>=0.50\]: +[0-9.]+" "$1" | grep -oE "[0-9.]+$"; }
info() { # params and GFLOPs per image of a deft model
    "$DEFT" model info -m "$1" | tail -1 | /usr/bin/python3 -c "
import re, sys
t = sys.stdin.read(); p = re.search(r'(\d+) params', t).group(1)
g = re.search(r'([0-9.]+) GFLOPs per image', t) or re.search(r'([0-9.]+) GFLOPs', t)
print(p, g.group(1))"
}
deft_ms() { "$DEFT" bench infer -m "$1" --batch 1 --threads $THREADS --steps 20 | grep -oE '"latency_ms": *[0-9.]+' | grep -oE '[0-9.]+$'; }
ort_ms() { node bench/ort_latency.js "$1" "$INPUT" 20 3 $THREADS | grep -oE '"latency_ms":[0-9.]+' | grep -oE '[0-9.]+$'; }

# 1-2
if [ -z "$MODEL" ]; then
    run train.log "$DEFT" $NET train -e "$SPEC" -r "$R/train" --threads $THREADS ${EPOCHS:+--set $EP=$EPOCHS}
    MODEL=$R/train/weights/best.safetensors
fi
run evaluate.log "$DEFT" $NET evaluate -e "$SPEC" -m "$MODEL" --threads $THREADS
# 3-4
if [ -z "$RETRAINED" ]; then
    run prune.log "$DEFT" $NET prune -m "$MODEL" -o "$R/pruned.safetensors" -r "$R/prune" $PRUNE_FLAGS
    PRUNED=$R/pruned.safetensors
    run evaluate_pruned.log "$DEFT" $NET evaluate -e "$SPEC" -m "$PRUNED" --threads $THREADS
    run retrain.log "$DEFT" $NET train -e "$SPEC" -r "$R/retrain" --threads $THREADS \
        --set training_config.pruned_model_path="$PRUNED" ${RETRAIN_EPOCHS:+--set $EP=$RETRAIN_EPOCHS}
    RETRAINED=$R/retrain/weights/best.safetensors
else
    PRUNED=${PRUNED:-$RETRAINED}
    run evaluate_pruned.log "$DEFT" $NET evaluate -e "$SPEC" -m "$PRUNED" --threads $THREADS
fi
run evaluate_retrained.log "$DEFT" $NET evaluate -e "$SPEC" -m "$RETRAINED" --threads $THREADS
# 5
run qat.log "$DEFT" $NET train -e "$SPEC" -r "$R/qat" --threads $THREADS \
    --set training_config.pruned_model_path="$RETRAINED" --set training_config.enable_qat=true \
    --set $EP=$QAT_EPOCHS \
    --set training_config.learning_rate.soft_start_cosine_annealing_schedule.max_learning_rate=$QAT_LR
QAT=$R/qat/weights/latest.safetensors
run evaluate_qat.log "$DEFT" $NET evaluate -e "$SPEC" -m "$QAT" --threads $THREADS
# 6
run export_fp32.log "$DEFT" $NET export -e "$SPEC" -m "$RETRAINED" -o "$R/fp32.onnx" --nms onnx --threads $THREADS
run export_ptq.log "$DEFT" $NET export -e "$SPEC" -m "$RETRAINED" -o "$R/ptq.onnx" --nms onnx --data_type int8 \
    --calibrator entropy --batches 10 --batch_size 16 --qdq_file "$R/ptq_qdq.onnx" --cal_cache_file "$R/ptq_cal.bin" --threads $THREADS
run export_qat.log "$DEFT" $NET export -e "$SPEC" -m "$QAT" -o "$R/qat.onnx" --nms onnx --data_type int8 \
    --qdq_file "$R/qat_qdq.onnx" --cal_cache_file "$R/qat_cal.bin" --threads $THREADS
# 7
for m in fp32 ptq_qdq qat_qdq; do
    run score_$m.log sh bench/yolo_onnx_score.sh score "$R/$m.onnx" "$SPEC" "$R/score_$m"
done
/usr/bin/python3 bench/yolo_onnx_score.py --link_images "$SPEC" "$R/val_images"
run dump.log "$DEFT" $NET inference -e "$SPEC" -m "$RETRAINED" -i "$R/val_images" --dump_input "$R/inputs" --threads $THREADS
INPUT=$(ls "$R"/inputs/*.npy | head -1)

row() { printf "%-44s %10s %8s %9s %8s\n" "$@"; }
echo
echo "YOLOv4 on BCCD val ($(ls "$R/val_images" | wc -l) images), $THREADS threads, batch-1 latency, $(date -u +%F)"
row step params GFLOPs "ms" "mAP@0.5"
set -- $(info "$MODEL");     row "1 trained (deft)" $1 $2 "$(deft_ms "$MODEL")" "$(map "$R/evaluate.log")"
set -- $(info "$PRUNED");    row "3 pruned, before retraining (deft)" $1 $2 "$(deft_ms "$PRUNED")" "$(map "$R/evaluate_pruned.log")"
set -- $(info "$RETRAINED"); row "4 retrained (deft)" $1 $2 "$(deft_ms "$RETRAINED")" "$(map "$R/evaluate_retrained.log")"
row "5 QAT fine-tuned (deft, fake-quantized)" $1 $2 "-" "$(map "$R/evaluate_qat.log")"
row "7 retrained FP32 ONNX (onnxruntime)" $1 $2 "$(ort_ms "$R/fp32.onnx")" "$(map "$R/score_fp32/score.log")"
row "7 retrained INT8 PTQ QDQ (onnxruntime)" $1 $2 "$(ort_ms "$R/ptq_qdq.onnx")" "$(map "$R/score_ptq_qdq/score.log")"
row "7 QAT INT8 QDQ (onnxruntime)" $1 $2 "$(ort_ms "$R/qat_qdq.onnx")" "$(map "$R/score_qat_qdq/score.log")"
echo "logs, models and per-class scores under $R"
