#!/bin/sh
# int8 engine speed (issue 22, Must show 2): deft's int8 engine against
# onnxruntime-node on the same network in fp32 and on deft's own QDQ export
# (the same cal.bin ranges), plus deft's fp32 engine; resnet18 and
# mobilenet_v2 (random weights, 10 classes, 224x224: speed does not depend on
# the weights), batch 1 and 16, $THREADS threads. The int8 ranges come from
# the sample photos (2 x 4). Each row runs the four alternately $ROUNDS times
# and keeps each one's best images/s (the machine is shared: the best is the
# least disturbed); the load average is printed with each row.
#   sh bench/engine_vs_ort.sh       env: THREADS=2 ROUNDS=3 ARCHS="resnet18 mobilenet_v2" BATCHES="1 16"
cd "$(dirname "$0")/.." || exit 1
DEFT=${DEFT_BIN:-build/deft}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
ARCHS=${ARCHS:-"resnet18 mobilenet_v2"}
BATCHES=${BATCHES:-"1 16"}
IMGS=../shared/data/sample_images
export OMP_NUM_THREADS=$THREADS
[ -x "$DEFT" ] || { echo "no $DEFT (build first)"; exit 1; }
[ -d "$IMGS" ] || { echo "no $IMGS"; exit 77; }
node bench/ort_infer.js 2>/dev/null; [ $? -eq 77 ] && { echo "onnxruntime-node not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "cpu: $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1), $(nproc) cores online"
best() { sed -n 's/.*"images_per_s": *\([0-9.]*\).*/\1/p' "$1" | sort -g | tail -1; }
printf "%-13s %5s %10s %10s %10s %10s %9s %9s %9s %6s  %s\n" arch batch "int8 img/s" "fp32 eng" "ort fp32" "ort qdq" \
    "/ort fp32" "/ort qdq" "/fp32 eng" load isa
for a in $ARCHS; do
    m=$T/$a
    "$DEFT" model init --arch $a --size 224 --classes 10 -o $m.safetensors >/dev/null &&
        "$DEFT" classification export -m $m.safetensors -o $m.onnx --logits --dynamic_batch --data_type int8 \
            --cal_image_dir "$IMGS" --batches 2 --batch_size 4 --cal_cache_file $m.cal.bin --qdq_file ${m}_qdq.onnx \
            >/dev/null 2>&1 || { echo "$a: export failed"; continue; }
    for b in $BATCHES; do
        steps=$([ "$b" -ge 8 ] && echo 8 || echo 30)
        "$DEFT" model convert -m $m.safetensors -o $m.q.engine --batch $b --precision int8 --cal_cache $m.cal.bin >/dev/null &&
            "$DEFT" model convert -m $m.safetensors -o $m.f.engine --batch $b >/dev/null || { echo "$a $b: convert failed"; continue; }
        : >$T/q; : >$T/f; : >$T/o; : >$T/oq; load=""
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            load="$load$(cut -d' ' -f1 /proc/loadavg) "
            "$DEFT" bench infer -m $m.q.engine --threads $THREADS --steps $steps --warmup 3 2>/dev/null | tail -1 >>$T/q
            "$DEFT" bench infer -m $m.f.engine --threads $THREADS --steps $steps --warmup 3 2>/dev/null | tail -1 >>$T/f
            node bench/ort_infer.js $m.onnx $b $steps 3 $THREADS >>$T/o
            node bench/ort_infer.js ${m}_qdq.onnx $b $steps 3 $THREADS >>$T/oq
            r=$((r + 1))
        done
        q=$(best $T/q); f=$(best $T/f); o=$(best $T/o); oq=$(best $T/oq)
        isa=$(sed -n 's/.*"isa": *"\([^"]*\)".*/\1/p' $T/q | head -1)
        printf "%-13s %5s %10s %10s %10s %10s %8.2fx %8.2fx %8.2fx  %s %s\n" $a $b "$q" "$f" "$o" "$oq" \
            "$(awk "BEGIN{print $q/$o}")" "$(awk "BEGIN{print $q/$oq}")" "$(awk "BEGIN{print $q/$f}")" "$load" "$isa"
    done
done
echo "(images/s, best of $ROUNDS; load: the 1-minute load average before each round; shared machine: preliminary)"
