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
    $REF prep "$IMGS" "$T/x.npy" &&
    $REF squeezenet "$SQ" "$T/x.npy" "$T/ref.npy" &&
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
    head -3 "$NAMES" >"$T/three.txt"
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
for a in $ARCHS; do
    $REF random $a "$T" &&
    $DEFT model import -i "$T/$a.pth" -o "$T/$a.safetensors" --arch $a >/dev/null &&
    $DEFT model run -m "$T/$a.safetensors" -i "$T/${a}_in.npy" -o "$T/${a}_y.npy" >/dev/null &&
    $REF compare "$T/${a}_y.npy" "$T/${a}_ref.npy" 1e-3 && ok "$a random weights" || bad "$a random weights"
    # model info on the bare .pth recognizes the architecture from names and shapes
    $DEFT model info -m "$T/$a.pth" >"$T/info" 2>&1 && grep -q "^architecture: $a (guessed" "$T/info" &&
        ok "model info guesses $a" || { bad "model info guesses $a"; head -3 "$T/info"; }
    rm -f "$T/$a.pth" "$T/$a.safetensors"
done
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
