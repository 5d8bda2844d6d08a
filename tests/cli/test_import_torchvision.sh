#!/bin/sh
# `deft model import` of real torch.save files, checked against torchvision:
# the ImageNet SqueezeNet 1.0 of ../shared/models on ../shared/data/sample_images,
# and torchvision architectures with random weights saved by PyTorch here.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/torchvision_import.py"
/usr/bin/python3 -c "import torch, torchvision, PIL" 2>/dev/null || { echo "SKIP: python3 torch/torchvision not available"; exit 77; }
SQ=$SHARED/models/squeezenet1_0_imagenet_deepcompression/squeezenet1_0_imagenet.pth
IMGS=$SHARED/data/sample_images
if [ -f "$SQ" ] && [ -d "$IMGS" ]; then
    $REF prep "$IMGS" "$T/x.npy" + squeezenet "$SQ" "$T/x.npy" "$T/ref.npy" &&
    $DEFT model import -i "$SQ" -o "$T/sq.safetensors" --arch squeezenet1_0 >/dev/null &&
    $DEFT model run -m "$T/sq.safetensors" -i "$T/x.npy" -o "$T/y.npy" >/dev/null &&
    $REF compare "$T/y.npy" "$T/ref.npy" 1e-3 && ok "squeezenet1_0 ImageNet .pth on sample_images" ||
        bad "squeezenet1_0 ImageNet .pth on sample_images"
    # foreign weights and class names (issue 24 #8)
    $DEFT classification inference -m "$SQ" -i "$IMGS" >"$T/f.out" 2>"$T/f.err"; rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$T/f.err")" -eq 1 ] && grep -q "PyTorch weights without a graph: import it first, .deft model import -i" "$T/f.err" &&
        ok "inference -m x.pth: exit 2, says how to import it" || bad "inference -m x.pth: exit $rc: $(cat "$T/f.err")"
    NAMES=$SHARED/models/squeezenet1_0_imagenet_deepcompression/imagenet_classes.txt
    $DEFT model import -i "$SQ" -o "$T/sqn.safetensors" --arch squeezenet1_0 --class_names "$NAMES" >/dev/null &&
        $DEFT classification inference -m "$T/sqn.safetensors" -i "$IMGS" -o "$T/sqn.csv" >/dev/null &&
        grep -q "chelsea.png,Egyptian cat," "$T/sqn.csv" && ok "--class_names FILE: ImageNet names in the inference CSV" ||
        bad "--class_names FILE: $(head -3 "$T/sqn.csv")"
    # the same weights run directly, without an import (issue 24: --arch/--class_names on inference)
    $DEFT classification inference -m "$SQ" --arch squeezenet1_0 --class_names "$NAMES" -i "$IMGS" \
        -o "$T/direct.csv" >/dev/null 2>"$T/d.err" && cmp -s "$T/direct.csv" "$T/sqn.csv" &&
        ok "inference -m x.pth --arch --class_names: the imported model's CSV, byte for byte" ||
        bad "inference -m x.pth --arch: $(cat "$T/d.err"; diff "$T/direct.csv" "$T/sqn.csv" | head -3)"
    SQO=$SHARED/models/squeezenet1_0_imagenet_deepcompression/squeezenet1_0_imagenet.onnx
    $DEFT classification inference -m "$SQO" --class_names "$NAMES" -i "$IMGS" -o "$T/onnx.csv" >/dev/null 2>&1 &&
        [ "$(cut -d, -f1,2 "$T/onnx.csv")" = "$(cut -d, -f1,2 "$T/sqn.csv")" ] &&
        ok "inference -m x.onnx --class_names: the same classes as the imported .pth" ||
        bad "inference -m x.onnx --class_names: $(head -3 "$T/onnx.csv")"
    head -3 "$NAMES" >"$T/three.txt"
    for c in "--arch squeezenet9|-m $SQ|did you mean 'squeezenet1_0'" \
             "--arch squeezenet1_0 --class_names $T/three.txt|-m $SQ|lists 3 names but .*classifier has 1000 classes" \
             "--class_names $T/three.txt|-m $SQO|lists 3 names but .*has 1000 classes" \
             "--class_names a,,b|-m $SQO|name 2 is empty" \
             "--class_names $T/none.txt|-m $SQO|no such file" \
             "--arch resnet18|-m $SQ|not resnet18 weights?"; do
        flags=${c%%|*}; rest=${c#*|}; m=${rest%%|*}; want=${rest#*|}
        # shellcheck disable=SC2086
        $DEFT classification inference $m $flags -i "$IMGS" -o "$T/bad/o.csv" >"$T/b.out" 2>"$T/b.err"; rc=$?
        [ $rc -eq 2 ] && [ "$(wc -l <"$T/b.err")" -eq 1 ] && grep -q "$want" "$T/b.err" && [ ! -e "$T/bad" ] &&
            ok "inference $flags: exit 2, one line, nothing written" || bad "inference $flags: exit $rc: $(cat "$T/b.err")"
    done
    printf 'a\n\nb\n' >"$T/gap.txt"
    for c in "three.txt:lists 3 names but .*classifier has 1000 classes" "gap.txt:an empty line"; do
        $DEFT model import -i "$SQ" -o "$T/no.safetensors" --arch squeezenet1_0 --class_names "$T/${c%%:*}" >"$T/n.out" 2>"$T/n.err"; rc=$?
        [ $rc -eq 2 ] && grep -q "${c#*:}" "$T/n.err" && [ ! -e "$T/no.safetensors" ] &&
            ok "--class_names ${c%%:*}: exit 2, $(cat "$T/n.err")" || bad "--class_names ${c%%:*}: exit $rc: $(cat "$T/n.err")"
    done
else
    skip_part "squeezenet: ../shared not present"
fi
# under the sanitizers (make asan: memory errors, not numbers) two architectures suffice
ARCHS="resnet18 mobilenet_v2 vgg16 googlenet efficientnet_b0"
[ -n "${DEFT_ASAN:-}" ] && ARCHS="resnet18 mobilenet_v2"
# every architecture's random weights, input and logits from one python start
# (torch's import is 2 CPU-s); vgg16's .pth (530 MB) is the largest on disk at once
$REF random "$(echo $ARCHS | tr ' ' ,)" "$T" || bad "torchvision random models ($ARCHS)"
for a in $ARCHS; do
    [ -f "$T/${a}_ref.npy" ] &&
    $DEFT model import -i "$T/$a.pth" -o "$T/$a.safetensors" --arch $a >/dev/null &&
    $DEFT model run -m "$T/$a.safetensors" -i "$T/${a}_in.npy" -o "$T/${a}_y.npy" >/dev/null &&
    $REF compare "$T/${a}_y.npy" "$T/${a}_ref.npy" 1e-3 && ok "$a random weights" || bad "$a random weights"
    # model info on the bare .pth recognizes the architecture from names and shapes
    $DEFT model info -m "$T/$a.pth" >"$T/info" 2>&1 && grep -q "^architecture: $a (guessed" "$T/info" &&
        ok "model info guesses $a" || { bad "model info guesses $a"; head -3 "$T/info"; }
    rm -f "$T/$a.pth" "$T/$a.safetensors"
done
# evaluate runs foreign weights too: a 2-class resnet18 .pth on hymenoptera gives
# the figures of the same weights imported first
if [ -d "$SHARED/data/hymenoptera_256/val" ]; then
    /usr/bin/python3 -c "
import torch, torchvision, sys
torch.manual_seed(1)
m = torchvision.models.resnet18(num_classes=2)
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
torch.save(m.state_dict(), sys.argv[1])" "$T/r2.pth"
    SPEC=$SRC/specs/hymenoptera_resnet18_scratch.yaml
    $DEFT classification evaluate -e "$SPEC" -m "$T/r2.pth" --arch resnet18 --class_names ants,bees -r "$T/ev1" \
        >"$T/ev1.txt" 2>&1 &&
        $DEFT model import -i "$T/r2.pth" -o "$T/r2.safetensors" --arch resnet18 --class_names ants,bees >/dev/null &&
        $DEFT classification evaluate -e "$SPEC" -m "$T/r2.safetensors" -r "$T/ev2" >"$T/ev2.txt" 2>&1 &&
        grep -q "^top-1 accuracy: .*/153)" "$T/ev1.txt" &&
        [ "$(grep -A3 '^top-1' "$T/ev1.txt")" = "$(grep -A3 '^top-1' "$T/ev2.txt")" ] &&
        ok "evaluate -m x.pth --arch --class_names: the imported model's figures ($(grep '^top-1' "$T/ev1.txt"))" ||
        bad "evaluate -m x.pth --arch: $(tail -3 "$T/ev1.txt") / $(tail -3 "$T/ev2.txt")"
else
    skip_part "evaluate -m x.pth: hymenoptera_256 not present"
fi
# a tensor of the wrong shape: exit 2 naming the tensor
/usr/bin/python3 -c "
import torch, torchvision, sys
sd = torchvision.models.resnet18().state_dict(); sd['layer1.0.conv1.weight'] = torch.zeros(64, 64, 1, 1)
torch.save(sd, sys.argv[1])" "$T/badshape.pth"
$DEFT model import -i "$T/badshape.pth" -o "$T/bs.safetensors" --arch resnet18 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 2 ] && grep -q "layer1.0.conv1.weight" "$T/err" && ok "wrong shape: exit 2 naming the tensor" ||
    { bad "wrong shape (exit $rc)"; cat "$T/err"; }
# a truncated zip: exit 2 naming the file
head -c 100000 "$T/badshape.pth" >"$T/trunc.pth"
$DEFT model import -i "$T/trunc.pth" -o "$T/tr.safetensors" 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 2 ] && grep -q "trunc.pth" "$T/err" && ok "truncated zip: exit 2 naming the file" ||
    { bad "truncated zip (exit $rc)"; cat "$T/err"; }
[ -e "$T/tr.safetensors" ] && bad "truncated import left an output file"
finish
