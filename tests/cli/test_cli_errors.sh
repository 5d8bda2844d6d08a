#!/bin/sh
# Bad input never crashes: truncated / hand-corrupted .safetensors, .npy of
# the wrong shape or dtype, unknown architecture names. Each must give a
# one-line error naming the problem and exit status 2. Also checks the
# happy path of `deft model run` on a checkpoint written by `deft demo`.
DEFT=${DEFT_BIN:-build/deft}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_err NAME PATTERN CMD...: exit 2, exactly one line on stderr matching PATTERN
expect_err() {
    name=$1 pat=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qi -- "$pat" "$T/err"; then
        ok; echo "ok   $name: $(cat "$T/err")"
    else
        bad "$name: exit $rc, $lines stderr lines: $(cat "$T/err")"
    fi
}

$DEFT demo --synthetic --steps 2 --batch 4 -r "$T/run" >/dev/null 2>&1 || { echo "FAIL: demo did not run"; exit 1; }
M=$T/run/weights/latest.safetensors
[ -f "$M" ] && ok || bad "no checkpoint written"

/usr/bin/python3 - "$T" <<'PY' || { echo "SKIP: numpy missing"; exit 77; }
import sys, numpy as np
d = sys.argv[1]
np.save(f"{d}/good.npy", np.random.rand(2, 3, 32, 32).astype(np.float32))
np.save(f"{d}/shape.npy", np.random.rand(2, 3, 30, 32).astype(np.float32))
np.save(f"{d}/rank.npy", np.random.rand(3, 32, 32).astype(np.float32))
np.save(f"{d}/dtype.npy", np.random.rand(2, 3, 32, 32).astype(np.float64))
np.save(f"{d}/int.npy", np.zeros((2, 3, 32, 32), dtype=np.int32))
open(f"{d}/garbage.npy", "wb").write(b"this is not numpy\n" * 10)
PY

# happy path: any batch size, output [2, 4]
if $DEFT model run -m "$M" -i "$T/good.npy" -o "$T/out.npy" >/dev/null 2>"$T/err"; then
    /usr/bin/python3 -c "import numpy as np,sys; a=np.load('$T/out.npy'); sys.exit(0 if a.shape==(2,4) and np.isfinite(a).all() else 1)" \
        && ok || bad "model run output has the wrong shape"
else
    bad "model run failed: $(cat "$T/err")"
fi

size=$(wc -c <"$M")
for cut in 0 4 8 100 1000 $((size / 2)) $((size - 1)); do
    head -c $cut "$M" >"$T/trunc.safetensors"
    expect_err "truncated safetensors at $cut bytes" "trunc.safetensors" \
        $DEFT model run -m "$T/trunc.safetensors" -i "$T/good.npy" -o "$T/o.npy"
done
# hand corruption: header length, JSON text, a dtype, a shape, data offsets
/usr/bin/python3 - "$M" "$T" <<'PY'
import sys, struct
src, d = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
hdr = b[8:8 + n].decode()
def put(name, data): open(f"{d}/{name}.safetensors", "wb").write(data)
put("hdrlen", struct.pack("<Q", n * 1000) + b[8:])
put("json", b[:8] + b"{X" + b[10:])
h2 = hdr.replace('"F32"', '"Q7"', 1).encode(); put("dtype", b[:8] + h2 + b[8 + n:])
i = hdr.index('"shape":[') + 9
h3 = (hdr[:i] + "9" + hdr[i:]).encode(); put("shape", struct.pack("<Q", len(h3)) + h3 + b[8 + n:])
h4 = hdr.replace('"data_offsets":[0,', '"data_offsets":[7,', 1).encode(); put("offsets", b[:8] + h4 + b[8 + n:])
PY
for c in hdrlen json dtype shape offsets; do
    expect_err "corrupted safetensors ($c)" "$c.safetensors" $DEFT model run -m "$T/$c.safetensors" -i "$T/good.npy" -o "$T/o.npy"
done
expect_err "npy wrong spatial shape" "shape" $DEFT model run -m "$M" -i "$T/shape.npy" -o "$T/o.npy"
expect_err "npy wrong rank" "rank.npy" $DEFT model run -m "$M" -i "$T/rank.npy" -o "$T/o.npy"
expect_err "npy float64" "float32" $DEFT model run -m "$M" -i "$T/dtype.npy" -o "$T/o.npy"
expect_err "npy int32" "float32" $DEFT model run -m "$M" -i "$T/int.npy" -o "$T/o.npy"
expect_err "npy garbage" "garbage.npy" $DEFT model run -m "$M" -i "$T/garbage.npy" -o "$T/o.npy"
expect_err "npy missing" "missing.npy" $DEFT model run -m "$M" -i "$T/missing.npy" -o "$T/o.npy"
expect_err "unknown arch (bench)" "unknown architecture 'resnet19'" $DEFT bench train --arch resnet19 --steps 1
expect_err "unknown arch (info)" "did you mean" $DEFT model info --arch mobilenetv2
expect_err "unknown command" "unknown command" $DEFT frobnicate
expect_err "bad flag value" "--batch" $DEFT bench train --arch resnet18 --batch many
# GPU flags: the CPU-only build names the backends it has; one GPU per process
expect_err "cuda backend absent or no GPU" "cuda" $DEFT bench train --arch resnet18 --batch 2 --size 32 --steps 1 --backend cuda
expect_err "--gpus 2 (evaluate)" "one process per GPU" $DEFT classification evaluate -e x.yaml --gpus 2
expect_err "--gpus two (train)" "number of processes" $DEFT classification train -e x.yaml --gpus two
if ! $DEFT --version | grep -q "data parallel: MPI"; then
    expect_err "--gpus 2 without MPI" "needs the MPI build" $DEFT classification train -e x.yaml --gpus 2
fi
expect_err "--gpu_index bad" "gpu_index" $DEFT classification train -e x.yaml --gpu_index one
expect_err "--use_amp bad mode" "bf16 or fp16" $DEFT bench train --arch resnet10 --use_amp fp8
expect_err "cuda-emu device index" "one device" $DEFT bench train --arch resnet10 --size 16 --batch 2 --steps 1 --backend cuda-emu --gpu_index 3
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
