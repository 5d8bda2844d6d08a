#!/bin/sh
# examples/classify.c, the engine C API's example: built by `make`
# (build/examples/classify) and again against an installed deft through
# `pkg-config deft` (cmake --install into a scratch prefix); both classify
# ../shared/data/sample_images with an engine of the ImageNet SqueezeNet 1.0
# and print, for every photo, the class and confidence that
# `deft classification inference` of the unconverted model writes (score
# within 1e-4); bad engines exit 2 with one line.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
BUILD=$(cd "$(dirname "$DEFT")" && pwd)
SQD=$SHARED/models/squeezenet1_0_imagenet_deepcompression
IMGS=$SHARED/data/sample_images
[ -f "$SQD/squeezenet1_0_imagenet.pth" ] && [ -d "$IMGS" ] || { echo "SKIP: ../shared models/sample_images missing"; exit 77; }
[ -x "$BUILD/examples/classify" ] && ok "make built examples/classify" || bad "no $BUILD/examples/classify"
$DEFT model import -i "$SQD/squeezenet1_0_imagenet.pth" -o $T/sq.safetensors --arch squeezenet1_0 \
    --class_names "$SQD/imagenet_classes.txt" >/dev/null &&
    $DEFT model convert -m $T/sq.safetensors -o $T/sq.engine --batch 3 >/dev/null &&
    $DEFT classification inference -m $T/sq.safetensors -i "$IMGS" -o $T/ref.csv >/dev/null || { bad "setup"; finish; exit; }
# the engine's answers vs inference's CSV (path,class,confidence)
check() {
    label=$1 out=$2
    /usr/bin/python3 - "$T/ref.csv" "$out" <<'PY' && ok "$label: $(grep -c "	" "$out") photos, class and confidence = deft classification inference's" || bad "$label: $(cat "$out")"
import csv, sys
ref = {r['path']: r for r in csv.DictReader(open(sys.argv[1]))}
got = [l.rstrip('\n').split('\t') for l in open(sys.argv[2]) if '\t' in l]
assert len(got) == len(ref) and len(ref) >= 3, (len(got), len(ref))
for path, cls, score in got:
    r = ref[path]
    assert cls == r['class'] and abs(float(score) - float(r['confidence'])) <= 1e-4, (path, cls, score, r)
PY
}
"$BUILD/examples/classify" $T/sq.engine "$IMGS"/*.jpg "$IMGS"/*.png >$T/make.out && check "build/examples/classify" $T/make.out
# installed, through pkg-config
# (a sanitizer build's library needs the user's program built with the same runtime first)
SAN=""; [ -n "${DEFT_ASAN:-}" ] && SAN="-fsanitize=address"
if command -v pkg-config >/dev/null && command -v cc >/dev/null; then
    cmake --install "$BUILD" --prefix $T/inst >/dev/null &&
        PKG_CONFIG_PATH=$T/inst/lib/pkgconfig cc -std=c11 -O2 $SAN "$SRC/examples/classify.c" -o $T/classify \
            $(PKG_CONFIG_PATH=$T/inst/lib/pkgconfig pkg-config --define-variable=prefix=$T/inst --cflags --libs deft) -lm &&
        LD_LIBRARY_PATH=$T/inst/lib $T/classify $T/sq.engine "$IMGS"/*.jpg "$IMGS"/*.png >$T/pc.out &&
        check "classify built with pkg-config deft" $T/pc.out || bad "pkg-config build or run"
else
    skip_part "pkg-config or cc missing: the installed build of the example"
fi
# bad input: one line, exit 2
head -c 100000 $T/sq.engine >$T/cut.engine
for e in $T/cut.engine $T/sq.safetensors $T/none.engine; do
    "$BUILD/examples/classify" $e "$IMGS/dog.jpg" >/dev/null 2>$T/err; rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <$T/err)" -eq 1 ] && ok "classify $(basename $e): exit 2, $(cat $T/err)" ||
        bad "classify $(basename $e): rc $rc $(cat $T/err)"
done
finish
