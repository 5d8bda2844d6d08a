#!/bin/sh
# `deft classification prune` against an independent numpy reference of TAO's
# rules (tests/ref/prune_ref.py, over torch.fx graphs of torchvision models):
# retained channel counts AND indices of every conv/depthwise/linear layer for
# resnet18, resnet50, mobilenet_v2 and squeezenet1_0 (random weights, filters
# scaled so their norms spread), both normalizers, all four equalization
# criteria, several thresholds, granularities and min_num_filters. Then: the
# pruned models run like torch models sliced by the reference's own reading of
# the channels; --target_ratio 0.3 lands within 0.02 (parameters counted from
# the written file); a reshape after a prunable layer fails naming the layer
# and writes nothing.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/prune_ref.py"
/usr/bin/python3 -c "import torch, torchvision, numpy, onnx" 2>/dev/null ||
    { echo "SKIP: python3 torch/torchvision/numpy/onnx not available"; exit 77; }
CONFIGS="max:union:0.5:8:16 max:intersection:0.6:4:8 max:arithmetic_mean:0.7:16:16 max:geometric_mean:0.4:1:1
L2:union:12:8:16 L2:intersection:8:2:4 L2:arithmetic_mean:15:8:32 L2:geometric_mean:20:8:16 max:union:0.9:1:1
L2:union:6:32:16"
ARCHS="resnet18 resnet50 mobilenet_v2 squeezenet1_0"
[ -n "${DEFT_ASAN:-}" ] && ARCHS="mobilenet_v2 squeezenet1_0"
for a in $ARCHS; do
    $REF make $a "$T/$a.pth" "$T/x.npy" &&
    $DEFT model import -i "$T/$a.pth" -o "$T/$a.safetensors" --arch $a >/dev/null ||
        { bad "$a: random weights and import"; continue; }
    : >"$T/$a.cfg"
    i=0 fails=0
    cfgs=$CONFIGS
    # resnet50 (100 MB of weights per run): one configuration per criterion, both normalizers
    [ $a = resnet50 ] && cfgs="max:union:0.5:8:16 L2:intersection:8:2:4 max:arithmetic_mean:0.7:16:16 L2:geometric_mean:20:8:16"
    for c in $cfgs; do
        i=$((i + 1))
        set -- $(echo "$c" | tr ':' ' ')
        $DEFT classification prune -m "$T/$a.safetensors" -o "$T/$a.p$i.safetensors" -r "$T/$a.r$i" \
            -n $1 -eq $2 -pth $3 -pg $4 -nf $5 >"$T/log" 2>&1 || { fails=1; cat "$T/log"; }
        echo "$1 $2 $3 $4 $5 $T/$a.r$i/prune/report.json" >>"$T/$a.cfg"
        [ $i -gt 1 ] && rm -f "$T/$a.p$i.safetensors"
    done
    [ $fails = 0 ] && $REF check $a "$T/$a.pth" "$T/$a.cfg" >"$T/check" 2>&1 &&
        ok "$a: retained counts and indices equal the reference ($(grep -c '^match' "$T/check") configurations)" ||
        { bad "$a: retained channels vs the reference"; cat "$T/check"; }
    # the first configuration's pruned model runs like the sliced torch model
    if [ "$a" != resnet50 ]; then
        $DEFT model run -m "$T/$a.p1.safetensors" -i "$T/x.npy" -o "$T/y.npy" >/dev/null &&
        $REF forward $a "$T/$a.pth" "$T/$a.r1/prune/report.json" "$T/x.npy" "$T/ref.npy" &&
        $REF compare "$T/y.npy" "$T/ref.npy" 1e-4 >"$T/cmp" &&
            ok "$a: pruned model output = sliced torch model ($(cat "$T/cmp"))" ||
            { bad "$a: pruned model output vs the sliced torch model"; cat "$T/cmp"; }
    fi
    if [ "$a" = resnet18 ] || [ "$a" = squeezenet1_0 ]; then
        $DEFT classification prune -m "$T/$a.safetensors" -o "$T/$a.t.safetensors" -r "$T/$a.t" \
            --target_ratio 0.3 >"$T/log" 2>&1 &&
        $REF ratio "$T/$a.safetensors" "$T/$a.t.safetensors" "$T/$a.t/prune/report.json" 0.3 0.02 >"$T/ratio" &&
            ok "$a: --target_ratio 0.3 -> $(cat "$T/ratio")" ||
            { bad "$a: --target_ratio 0.3"; cat "$T/log" "$T/ratio"; }
    fi
    rm -f "$T/$a.p1.safetensors" "$T/$a.t.safetensors" "$T/$a.safetensors" "$T/$a.pth"
done
# a reshape after a prunable layer: exit 2 naming the layer, no file written
$REF reshape_onnx "$T/rs.onnx" &&
$DEFT model import -i "$T/rs.onnx" -o "$T/rs.safetensors" >/dev/null || bad "reshape model import"
$DEFT classification prune -m "$T/rs.safetensors" -o "$T/rs.p.safetensors" -pth 0.5 >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 2 ] && grep -q "reshape" "$T/err" && grep -q "conv1" "$T/err" && [ ! -e "$T/rs.p.safetensors" ] &&
    [ -z "$(ls "$T" | grep 'rs.p.safetensors')" ] && ok "reshape after a prunable layer: exit 2, '$(cat "$T/err")'" ||
    { bad "reshape after a prunable layer (rc $rc)"; cat "$T/err"; }
$DEFT classification prune -m "$T/rs.safetensors" -o "$T/rs.p.safetensors" -el nosuchlayer 2>"$T/err" >/dev/null
[ $? = 2 ] && grep -q nosuchlayer "$T/err" && ok "-el with an unknown layer: exit 2" || bad "-el unknown layer"
# excluding the layer makes the same model prunable; the rest is pruned
$DEFT classification prune -m "$T/rs.safetensors" -o "$T/rs.p.safetensors" -pth 0.5 -nf 1 -pg 1 -el conv1 >/dev/null 2>"$T/err" &&
    $DEFT model info -m "$T/rs.p.safetensors" >/dev/null && ok "-el conv1 makes it prunable" ||
    { bad "-el conv1"; cat "$T/err"; }
finish
