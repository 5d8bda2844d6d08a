#!/bin/sh
# deft's inference engines against onnxruntime-node on the same networks, in one run (issue 22,
# Must show 1, 2, 3 and 5): for each network (random weights, 10 classes, 224x224: speed does not
# depend on the weights; yolo_v4_tiny: 416x416, 3 classes, trained one epoch on 8 BCCD photos,
# both heads as the engine's outputs, onnxruntime on the --nms none export cut at the same
# heads) and batch, the fp32, bf16 and int8 engines of `deft model convert`
# against onnxruntime on deft's fp32 ONNX export and on its QDQ export (the int8 engine's cal.bin
# ranges, from the sample photos, 2 x 4). Each row runs the five alternately $ROUNDS times and
# keeps each one's best images/s (a shared machine: the best is the least disturbed) and each
# one's largest peak RSS; the 1-minute load average before each round is printed with the row.
#   sh bench/engine_vs_ort.sh     env: THREADS=2 ROUNDS=3 BATCHES="1 16"
#                                      ARCHS="resnet18 mobilenet_v2 efficientnet_b0 yolo_v4_tiny"
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
ARCHS=${ARCHS:-"resnet18 mobilenet_v2 efficientnet_b0 yolo_v4_tiny"}
BATCHES=${BATCHES:-"1 16"}
IMGS=../shared/data/sample_images
export OMP_NUM_THREADS=$THREADS
[ -x "$DEFT" ] || { echo "no $DEFT (build first)"; exit 1; }
[ -d "$IMGS" ] || { echo "no $IMGS"; exit 77; }
node bench/ort_infer.js 2>/dev/null; [ $? -eq 77 ] && { echo "onnxruntime-node not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "cpu: $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1), $(nproc) cores online"
field() { sed -n "s/.*\"$1\": *\"*\([0-9a-z_.]*\).*/\1/p" "$2"; }
best() { field images_per_s "$1" | sort -g | tail -1; }
rss() { field peak_rss_mib "$1" | sort -g | tail -1; }
ratio() { awk "BEGIN{printf \"%.2fx\", $1/$2}"; }
# yolo_models ARCH M: M.safetensors (YOLOv4 trained 1 epoch on 8 BCCD photos at 416x416), M.onnx and
# M_qdq.onnx (fp32 and QDQ exports cut at the heads: the network the engine runs), M.cal.bin
yolo_models() {
    bccd=$(cd ../shared/data/bccd 2>/dev/null && pwd) || return 1
    head -8 "$bccd/ImageSets/Main/train.txt" >$T/y_list.txt
    sed -e "s|\(\.\./\)*shared/data/bccd|$bccd|g" -e "s|$bccd/ImageSets/Main/[a-z]*\.txt|$T/y_list.txt|" \
        specs/yolo_v4_tiny_bccd.txt >$T/y_spec.txt
    set -- "$1" "$2" --set augmentation_config.output_width=416 --set augmentation_config.output_height=416
    "$DEFT" $1 train -e $T/y_spec.txt -r $T/y_run --overwrite "$3" "$4" "$5" "$6" \
        --set training_config.num_epochs=1 >$T/y_train.log 2>&1 &&
        cp $T/y_run/weights/latest.safetensors $2.safetensors &&
        "$DEFT" $1 export -m $2.safetensors -e $T/y_spec.txt "$3" "$4" "$5" "$6" -o $2_full.onnx --nms none \
            --data_type int8 --batches 2 --batch_size 4 --cal_cache_file $2.cal.bin --qdq_file $2_qdqfull.onnx \
            --quantize_head >/dev/null 2>&1 &&
        /usr/bin/python3 -c 'import sys, onnx.utils
for a, b in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    onnx.utils.extract_model(a, b, ["Input"], ["head_s32", "head_s16"])' \
            $2_full.onnx $2.onnx $2_qdqfull.onnx $2_qdq.onnx
}

hdr="%-15s %5s %9s %9s %9s %9s %9s %7s %7s %7s %7s %7s %7s  %s\n"
printf "$hdr" arch batch fp32 bf16 int8 "ort fp32" "ort qdq" "f/ortf" "b/ortf" "b/f" "i/ortf" "i/ortq" "MiB f" \
    "ort MiB / load / isa / fp32 layout"
for a in $ARCHS; do
    m=$T/$a
    size=224
    case $a in
    yolo_v4_*) size=416; yolo_models $a $m || { echo "$a: model or export failed"; continue; } ;;
    *) "$DEFT" model init --arch $a --size 224 --classes 10 -o $m.safetensors >/dev/null &&
        "$DEFT" classification export -m $m.safetensors -o $m.onnx --logits --dynamic_batch --data_type int8 \
            --cal_image_dir "$IMGS" --batches 2 --batch_size 4 --cal_cache_file $m.cal.bin --qdq_file ${m}_qdq.onnx \
            >/dev/null 2>&1 || { echo "$a: export failed"; continue; } ;;
    esac
    for b in $BATCHES; do
        steps=$([ "$b" -ge 8 ] && echo 8 || echo 30)
        for p in fp32 bf16 int8; do
            cal=$([ $p = int8 ] && echo "--cal_cache $m.cal.bin")
            "$DEFT" model convert -m $m.safetensors -o $m.$p.engine --input_shape ${b}x3x${size}x$size \
                --precision $p $cal >/dev/null ||
                { echo "$a $b: $p convert failed"; continue 2; }
            : >$T/$p
        done
        : >$T/o; : >$T/oq; load=""
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            load="$load$(cut -d' ' -f1 /proc/loadavg) "
            for p in fp32 bf16 int8; do
                "$DEFT" bench infer -m $m.$p.engine --threads $THREADS --steps $steps --warmup 3 2>/dev/null | tail -1 >>$T/$p
            done
            node bench/ort_infer.js $m.onnx $b $steps 3 $THREADS $size >>$T/o
            node bench/ort_infer.js ${m}_qdq.onnx $b $steps 3 $THREADS $size >>$T/oq
            r=$((r + 1))
        done
        f=$(best $T/fp32); bf=$(best $T/bf16); q=$(best $T/int8); o=$(best $T/o); oq=$(best $T/oq)
        printf "$hdr" $a $b "$f" "$bf" "$q" "$o" "$oq" "$(ratio $f $o)" "$(ratio $bf $o)" "$(ratio $bf $f)" \
            "$(ratio $q $o)" "$(ratio $q $oq)" "$(rss $T/fp32)" "$(rss $T/o) / $load/ $(field isa $T/int8 | head -1) / $(field layout $T/fp32 | head -1)"
    done
done
echo "(images/s, best of $ROUNDS; f/ortf: fp32 engine / onnxruntime fp32, b: bf16 engine, i: int8 engine,"
echo " ortq: onnxruntime on the QDQ export; MiB f: the fp32 engine's peak RSS; load: 1-minute load average per round)"
