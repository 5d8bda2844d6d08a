#!/bin/sh
# torchvision detectors imported (issue 20, must-show 3): each architecture with
# random weights written by PyTorch here (torchvision 0.14, eval mode), imported
# with `deft model import --arch` and run with `deft model detect --raw` on
# ../shared/data/sample_images, gives torchvision's detections: every anchor's
# decoded box within 1e-3 relative and its class scores within 1e-4 before NMS
# (fasterrcnn: the RPN's, every anchor's proposal and objectness), the same
# detections (labels, boxes, scores) after NMS (fasterrcnn: after the RPN's
# NMS, RoI pooling, box head and the final NMS). The worst differences
# are printed.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/tv_detectors.py"
/usr/bin/python3 -c "import torch, torchvision, PIL" 2>/dev/null || { echo "SKIP: python3 torch/torchvision not available"; exit 77; }
IMGS=$SHARED/data/sample_images
[ -d "$IMGS" ] || { echo "SKIP: $IMGS not present"; exit 77; }
# arch|torchvision min_size max_size|images (the RCNN transform at a small scale and fewer
# photos, for CPU time; empty: all photos)
CASES='ssd300_vgg16||dog.jpg eagle.jpg astronaut.png;retinanet_resnet50_fpn|320 512|person.jpg;fasterrcnn_resnet50_fpn|320 512|dog.jpg;ssdlite320_mobilenet_v3_large||dog.jpg;fasterrcnn_mobilenet_v3_large_fpn|320 512|dog.jpg'
# DEFT_TV_ALL_PHOTOS=1: every sample photo for every detector (about 10 CPU-minutes)
[ -n "${DEFT_TV_ALL_PHOTOS:-}" ] && CASES='ssd300_vgg16||;retinanet_resnet50_fpn|320 512|;fasterrcnn_resnet50_fpn|320 512|;ssdlite320_mobilenet_v3_large||;fasterrcnn_mobilenet_v3_large_fpn|320 512|'
# make asan looks for memory errors, not numbers: one photo each
[ -n "${DEFT_ASAN:-}" ] && CASES='ssd300_vgg16||dog.jpg;retinanet_resnet50_fpn|320 512|dog.jpg;fasterrcnn_resnet50_fpn|320 512|dog.jpg;ssdlite320_mobilenet_v3_large||dog.jpg;fasterrcnn_mobilenet_v3_large_fpn|320 512|dog.jpg'
# each case's photos; torchvision's side of every case (random weights (the mobilenet_v3
# detectors' scaled on every sample photo: see make) and its detections on the case's
# photos) from one python start (torch's import is 2 CPU-s), before deft's
: >"$T/makerun.txt"
IFS=';'
set -f
for c in $CASES; do
    unset IFS
    set +f
    a=${c%%|*}; sz=${c#*|}; imgs=${sz#*|}; sz=${sz%%|*}
    # DEFT_TV_ONLY=ARCH: that detector alone (while working on it)
    [ -n "${DEFT_TV_ONLY:-}" ] && [ "$a" != "$DEFT_TV_ONLY" ] && continue
    grep -q "\"$a\"" "$SRC/src/models/tv_detection/tv_det.c" || continue
    IMGS=$SHARED/data/sample_images
    if [ -n "$imgs" ]; then
        mkdir -p "$T/img_$a" && for i in $imgs; do cp "$SHARED/data/sample_images/$i" "$T/img_$a/"; done
        IMGS=$T/img_$a
    fi
    echo "$a $T/$a.pth $SHARED/data/sample_images $IMGS $T/ref_$a $sz" >>"$T/makerun.txt"
done
[ -s "$T/makerun.txt" ] && $REF makerun_list "$T/makerun.txt"
IFS=';'
set -f
for c in $CASES; do
    unset IFS
    set +f
    a=${c%%|*}; sz=${c#*|}; imgs=${sz#*|}; sz=${sz%%|*}
    [ -n "${DEFT_TV_ONLY:-}" ] && [ "$a" != "$DEFT_TV_ONLY" ] && continue
    IMGS=$SHARED/data/sample_images
    [ -n "$imgs" ] && IMGS=$T/img_$a
    grep -q "\"$a\"" "$SRC/src/models/tv_detection/tv_det.c" || { skip_part "$a: not built yet"; continue; }
    [ -f "$T/ref_$a/done" ] || { bad "$a: torchvision model and run"; continue; }
    # shellcheck disable=SC2086
    $DEFT model import -i "$T/$a.pth" --arch $a -o "$T/$a.safetensors" ${sz:+--min_size ${sz% *} --max_size ${sz#* }} >"$T/imp.out" 2>&1 &&
        ok "$a: import ($(cat "$T/imp.out"))" || { bad "$a: import: $(cat "$T/imp.out")"; continue; }
    $DEFT model detect -m "$T/$a.safetensors" -i "$IMGS" -o "$T/deft_$a" --raw >"$T/det.out" 2>&1 ||
        { bad "$a: detect: $(cat "$T/det.out")"; continue; }
    $REF compare "$T/deft_$a" "$T/ref_$a" >"$T/cmp.out" 2>&1; rc=$?
    cat "$T/cmp.out"
    [ $rc -eq 0 ] && ok "$a: torchvision's detections before and after NMS ($(tail -1 "$T/cmp.out"))" ||
        bad "$a: differs from torchvision"
    n=$(ls "$T/deft_$a"/*.txt | wc -l)
    [ "$n" -eq "$(ls "$IMGS" | grep -ci '\.\(jpg\|png\)$')" ] && head -1 "$(ls "$T/deft_$a"/*.txt | head -1)" | grep -q '^class_[0-9] 0.00 0 0.00 ' &&
        ok "$a: one KITTI label file per image, scores last" || bad "$a: KITTI files ($n)"
    [ "$a" = ssdlite320_mobilenet_v3_large ] && mv "$T/$a.pth" "$T/lite.pth"
    rm -f "$T/$a.pth"
done
# bad input: an ssdlite checkpoint missing a key, and one with a wrong shape, name the key
# (one python start writes the bad ssdlite checkpoints and the resnet18 state dict)
/usr/bin/python3 -c "
import os, torch, torchvision
torch.save(torchvision.models.resnet18().state_dict(), '$T/r18.pth')
if os.path.exists('$T/lite.pth'):
    sd = torch.load('$T/lite.pth'); k = 'backbone.features.0.4.block.2.fc1.weight'
    sd2 = dict(sd); del sd2[k]; torch.save(sd2, '$T/lite_miss.pth')
    sd[k] = sd[k][:, :-1]; torch.save(sd, '$T/lite_shape.pth')"
if [ -e "$T/lite.pth" ]; then
    for w in miss shape; do
        $DEFT model import -i "$T/lite_$w.pth" --arch ssdlite320_mobilenet_v3_large -o "$T/no.safetensors" >"$T/b.out" 2>"$T/b.err"; rc=$?
        [ $rc -ne 0 ] && grep -q "backbone.features.0.4.block.2.fc1.weight" "$T/b.err" && [ ! -e "$T/no.safetensors" ] &&
            ok "ssdlite checkpoint ($w key): exit $rc, $(cat "$T/b.err")" || bad "ssdlite checkpoint ($w key): exit $rc: $(cat "$T/b.err")"
    done
fi
# bad input: a classification state dict is no detector; a classification model is not run by detect
[ -f "$T/r18.pth" ] &&
$DEFT model import -i "$T/r18.pth" --arch ssd300_vgg16 -o "$T/no.safetensors" >"$T/b.out" 2>"$T/b.err"; rc=$?
[ $rc -eq 2 ] && grep -q "no ssd300_vgg16 classification head" "$T/b.err" && [ ! -e "$T/no.safetensors" ] &&
    ok "resnet18 weights as ssd300_vgg16: exit $rc, $(cat "$T/b.err")" || bad "resnet18 as ssd300_vgg16: exit $rc: $(cat "$T/b.err")"
$DEFT model import -i "$T/r18.pth" --arch fasterrcnn_resnet50_fpn -o "$T/no.safetensors" >"$T/b.out" 2>"$T/b.err"; rc=$?
[ $rc -eq 2 ] && grep -q "no fasterrcnn_resnet50_fpn classification head" "$T/b.err" && [ ! -e "$T/no.safetensors" ] &&
    ok "resnet18 weights as fasterrcnn_resnet50_fpn: exit $rc" || bad "resnet18 as fasterrcnn: exit $rc: $(cat "$T/b.err")"
$DEFT model import -i "$T/r18.pth" --arch resnet18 -o "$T/r18.safetensors" >/dev/null 2>&1
$DEFT model detect -m "$T/r18.safetensors" -i "$IMGS" -o "$T/no_det" >"$T/b.out" 2>"$T/b.err"; rc=$?
[ $rc -eq 2 ] && grep -q "not a torchvision detector" "$T/b.err" && [ ! -e "$T/no_det" ] &&
    ok "detect with a classifier: exit $rc, $(cat "$T/b.err")" || bad "detect with a classifier: exit $rc: $(cat "$T/b.err")"
finish
