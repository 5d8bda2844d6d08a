#!/bin/sh
# make bench: deft against PyTorch (Debian python3-torch, torchvision models)
# in the same run, 2 threads, fp32, 224x224: training at batch 16 and
# inference latency at batch 1. Prints each JSON line and a ratio table.
# Speed is compared only as ratios measured side by side on this machine.
BUILD=${1:-build}
DEFT=$BUILD/deft
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
export OMP_NUM_THREADS=$THREADS
PEERS=$(dirname "$0")/../../shared/peers
TORCH_BENCH=$PEERS/torch_bench.py
[ -f "$TORCH_BENCH" ] || TORCH_BENCH=$(dirname "$0")/torch_bench.py
OUT=$(mktemp)
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" | head -1; }
for arch in resnet18 mobilenet_v2; do
    d=$($DEFT bench train --arch $arch --size 224 --batch 16 --threads $THREADS --steps $STEPS --warmup 2)
    echo "$d"
    t=$(/usr/bin/python3 "$TORCH_BENCH" --mode train --model $arch --size 224 --batch 16 --warmup 2 --iters $STEPS)
    echo "$t"
    echo "train $arch $(echo "$d" | field images_per_s) $(echo "$t" | field img_per_s_median) $(echo "$d" | field peak_rss_mib) $(echo "$t" | field peak_rss_mib)" >> "$OUT"
    d=$($DEFT bench infer --arch $arch --size 224 --batch 1 --threads $THREADS --steps 30 --warmup 5)
    echo "$d"
    t=$(/usr/bin/python3 "$TORCH_BENCH" --mode infer --model $arch --size 224 --batch 1 --warmup 5 --iters 30)
    echo "$t"
    echo "infer $arch $(echo "$d" | field latency_ms) $(echo "$t" | field median) $(echo "$d" | field peak_rss_mib) $(echo "$t" | field peak_rss_mib)" >> "$OUT"
done
echo
printf "%-6s %-13s %12s %12s %8s %10s %10s\n" mode arch deft torch ratio "deft MiB" "torch MiB"
while read mode arch a b ra rb; do
    if [ "$mode" = train ]; then
        r=$(awk "BEGIN{printf \"%.2fx\", $a/$b}"); unit="img/s"
    else
        r=$(awk "BEGIN{printf \"%.2fx\", $b/$a}"); unit="ms(b1)"
    fi
    printf "%-6s %-13s %12s %12s %8s %10s %10s  (%s; ratio >1 = deft faster)\n" $mode $arch $a $b $r $ra $rb $unit
done < "$OUT"
rm -f "$OUT"
