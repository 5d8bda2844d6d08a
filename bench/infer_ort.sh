#!/bin/sh
# deft inference against onnxruntime-node on the same networks, in one run (issue 22, Must
# show 1): torchvision resnet18 and mobilenet_v2 (10-class head, random weights, eval mode)
# exported to ONNX opset 13 by PyTorch for onnxruntime, the same architectures built by
# `deft bench infer --arch` for deft; fp32, 224x224, batch 1 and 16, $THREADS threads.
# Each row runs deft and onnxruntime alternately $ROUNDS times and keeps each tool's best
# median (the machine is shared; the best is the least disturbed). Prints the CPU model and
# the ratio deft/onnxruntime (images per second; > 1: deft faster).
#   sh bench/infer_ort.sh [BUILD]     env: THREADS=2 ROUNDS=3 ARCHS="resnet18 mobilenet_v2"
#                                          BATCHES="1 16" BEFORE=/path/to/older/deft (extra column)
BUILD=${1:-build}
DEFT=${DEFT_BIN:-$BUILD/deft}
HERE=$(dirname "$0")
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
ARCHS=${ARCHS:-"resnet18 mobilenet_v2"}
BATCHES=${BATCHES:-"1 16"}
export OMP_NUM_THREADS=$THREADS
[ -x "$DEFT" ] || { echo "infer_ort: no $DEFT (build first)"; exit 1; }
node "$HERE/ort_infer.js" 2>/dev/null; [ $? -eq 77 ] && { echo "infer_ort: onnxruntime-node not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "cpu: $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1), $(nproc) cores online, load $(cut -d' ' -f1 /proc/loadavg)"
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" | head -1; }
best() { # best (max) images_per_s of the lines in file $1
    field images_per_s < "$1" | sort -g | tail -1
}
for arch in $ARCHS; do
    /usr/bin/python3 - "$arch" "$TMP/$arch.onnx" <<'PY' || { echo "infer_ort: export of $arch failed"; exit 1; }
import sys, torch, torchvision
name, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
m = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), out, opset_version=13, do_constant_folding=True,
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
PY
    for b in $BATCHES; do
        steps=$([ "$b" -ge 8 ] && echo 8 || echo 30)
        : > "$TMP/d"; : > "$TMP/o"; : > "$TMP/b"
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            "$DEFT" bench infer --arch "$arch" --batch "$b" --threads "$THREADS" --steps $steps --warmup 3 >> "$TMP/d" || exit 1
            node "$HERE/ort_infer.js" "$TMP/$arch.onnx" "$b" $steps 3 "$THREADS" >> "$TMP/o" || exit 1
            [ -n "$BEFORE" ] && "$BEFORE" bench infer --arch "$arch" --batch "$b" --threads "$THREADS" --steps $steps --warmup 3 >> "$TMP/b"
            r=$((r + 1))
        done
        cat "$TMP/d" "$TMP/o" "$TMP/b"
        d=$(best "$TMP/d"); o=$(best "$TMP/o")
        dm=$(field peak_rss_mib < "$TMP/d"); om=$(field peak_rss_mib < "$TMP/o")
        extra=""
        if [ -n "$BEFORE" ]; then
            bb=$(best "$TMP/b")
            extra=$(awk "BEGIN{printf \"  %12s %12.2fx\", \"$bb\", $bb/$o}")
        fi
        echo "$arch $b $d $o $dm $om$extra" >> "$TMP/table"
    done
done
echo
printf "%-13s %5s %12s %12s %8s %10s %10s%s\n" arch batch "deft img/s" "ort img/s" ratio "deft MiB" "ort MiB" \
    "${BEFORE:+  before img/s  before ratio}"
while read arch b d o dm om rest; do
    printf "%-13s %5s %12s %12s %7.2fx %10s %10s %s\n" "$arch" "$b" "$d" "$o" "$(awk "BEGIN{print $d/$o}")" "$dm" "$om" "$rest"
done < "$TMP/table"
