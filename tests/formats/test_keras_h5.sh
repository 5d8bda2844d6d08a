#!/bin/sh
# Keras HDF5 weights in TAO's layout (written here with h5py from known
# arrays) imported by `deft model import`: every tensor identical after the
# layout conversion; bad HDF5 input exits 2 naming the file, forged files
# that make libhdf5 spin or allocate gigabytes are stopped by the sandbox.
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
# libhdf5 runs in a child process with limits (src/io/sandbox.c): files the
# fuzzer forged make libhdf5 spin (timeout-*) or allocate 4 GB (oom-*)
R=$SRC/tests/fuzz/regress/keras_h5
for f in "$R"/timeout-* "$R"/oom-*; do
    DEFT_SANDBOX_SECONDS=3 $DEFT model import -i "$f" -o "$T/h.safetensors" 2>"$T/err" >/dev/null
    rc=$?
    [ $rc -eq 2 ] && grep -q "$(basename "$f")" "$T/err" && ok "forged HDF5 $(basename "$f" | cut -c1-14): exit 2" ||
        { bad "forged HDF5 $(basename "$f") (exit $rc)"; cat "$T/err"; }
done
grep -q "time limit (3 s)" "$T/err" 2>/dev/null || DEFT_SANDBOX_SECONDS=3 $DEFT model import -i "$(ls "$R"/timeout-* | head -1)" \
    -o "$T/h.safetensors" 2>&1 | grep -q "time limit (3 s)" && ok "the time limit is named" || bad "time limit message"
if [ -z "${DEFT_ASAN:-}" ]; then # no address-space limit under ASan
    DEFT_SANDBOX_MEMORY_MB=1 $DEFT model import -i "$T/model.h5" -o "$T/m1.safetensors" 2>"$T/err" >/dev/null
    rc=$?
    [ $rc -eq 2 ] && grep -q "DEFT_SANDBOX_MEMORY_MB" "$T/err" && ok "reader over its memory limit: exit 2, names the limit" ||
        { bad "memory limit (exit $rc)"; cat "$T/err"; }
fi
[ -e "$T/t.safetensors" ] || [ -e "$T/p.safetensors" ] || [ -e "$T/h.safetensors" ] || [ -e "$T/m1.safetensors" ] &&
    bad "a failed import left an output file"
finish
