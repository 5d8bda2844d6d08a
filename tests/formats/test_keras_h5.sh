#!/bin/sh
# Keras HDF5 weights in TAO's layout (written here with h5py from known
# arrays) imported by `deft model import`: every tensor identical after the
# layout conversion; bad HDF5 input exits 2 naming the file.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
REF="/usr/bin/python3 $SRC/tests/ref/keras_h5.py"
/usr/bin/python3 -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: python3-h5py not available"; exit 77; }
for v in weights model; do
    $REF write "$T/$v.h5" "$T/$v.npz" $v &&
    $DEFT model import -i "$T/$v.h5" -o "$T/$v.safetensors" >/dev/null &&
    $REF compare "$T/$v.safetensors" "$T/$v.npz" && ok "keras $v file: every tensor identical" ||
        bad "keras $v file"
done
$DEFT model info -m "$T/model.h5" >"$T/info" 2>&1 && grep -q "keras hdf5\|format: hdf5" "$T/info" &&
    ok "model info reads the .h5" || { bad "model info on .h5"; cat "$T/info"; }
$REF notkeras "$T/plain.h5"
$DEFT model import -i "$T/plain.h5" -o "$T/p.safetensors" 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 2 ] && grep -q "plain.h5" "$T/err" && ok "HDF5 without Keras weights: exit 2" ||
    { bad "HDF5 without Keras weights (exit $rc)"; cat "$T/err"; }
head -c 3000 "$T/model.h5" >"$T/trunc.h5"
$DEFT model import -i "$T/trunc.h5" -o "$T/t.safetensors" 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 2 ] && grep -q "trunc.h5" "$T/err" && ok "truncated HDF5: exit 2" ||
    { bad "truncated HDF5 (exit $rc)"; cat "$T/err"; }
[ -e "$T/t.safetensors" ] || [ -e "$T/p.safetensors" ] && bad "a failed import left an output file"
finish
