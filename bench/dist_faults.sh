#!/bin/sh
# Faults in data-parallel training (issue 23, Must-show 4): ROUNDS (10) times,
# kill -9 rank 1 of `mpirun -np 2 deft classification train` at a random step
# (drawn from SEED, printed: rank 1 reports each finished step on stderr with
# DEFT_FAULT_TRACE_STEPS=1; the kill lands a random fraction of a step after
# step K) and check: the job ends within 10 s, mpirun's message names rank 1,
# the last checkpoint loads (`deft model info`), --resume on 2 ranks finishes
# with the uninterrupted 2-rank run's weights and optimizer state bit for bit,
# and --resume of the same checkpoint on 1 process x batch 16 finishes within
# 1e-5 (relative, worst tensor) of an uninterrupted 1-process run. A kill
# before the first checkpoint (epoch 1) must leave --resume refusing ("nothing
# to resume") and a fresh --overwrite start must give the same weights.
# The model and data are test_dist_train's: mobilenet_v2 with frozen batch norm,
# 64x64, 64 images of hymenoptera_256, global batch 16: 5 epochs x 4 steps,
# a checkpoint at every epoch end. Prints a table and "N of N rounds"; exits
# non-zero on any failed round.
BUILD=${1:-build}
DEFT=$(cd "$BUILD" && pwd)/deft
SEED=${SEED:-$(date +%s)}
ROUNDS=${ROUNDS:-10}
DATA=$(cd "${DEFT_SHARED_DIR:-$(dirname "$0")/../../shared}" 2>/dev/null && pwd)/data/hymenoptera_256
command -v mpirun >/dev/null || { echo "needs mpirun (openmpi-bin)"; exit 1; }
$DEFT --version | grep -q "data parallel: MPI" || { echo "needs a deft built with MPI"; exit 1; }
[ -d "$DATA/train" ] || { echo "needs ../shared/data/hymenoptera_256"; exit 1; }
/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "needs python3-numpy"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 DEFT_FAULT_TRACE_STEPS=1
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,tcp -x OMP_NUM_THREADS -x DEFT_FAULT_TRACE_STEPS"
STEPS=20

mkdir -p "$T/train/ants" "$T/train/bees" "$T/val/ants" "$T/val/bees" "$T/bn/ants" "$T/bn/bees"
for c in ants bees; do
    ls "$DATA/train/$c" | sort | head -32 | while read -r f; do ln -s "$DATA/train/$c/$f" "$T/train/$c/$f"; done
    ls "$DATA/train/$c" | sort | tail -8 | while read -r f; do ln -s "$DATA/train/$c/$f" "$T/bn/$c/$f"; done
    ls "$DATA/val/$c" | sort | head -8 | while read -r f; do ln -s "$DATA/val/$c/$f" "$T/val/$c/$f"; done
done
spec() { # $1: batch per rank, $2: freeze_bn, $3: training images, $4: lr, $5: epochs, $6: another train_config line
    cat <<EOF
model_config:
  arch: mobilenet_v2
  input_image_size: "3,64,64"
  freeze_bn: $2
  batch_norm_config:
    momentum: 0
train_config:
  train_dataset_path: $3
  val_dataset_path: $T/val
  batch_size_per_gpu: $1
  n_epochs: $5
  n_workers: 1
  random_seed: 11
  $6
  optimizer:
    sgd:
      lr: $4
      momentum: 0.9
  enable_random_crop: true
  preprocess_mode: torch
EOF
}
# frozen batch norm needs statistics: one batch's, from a negligible-lr step
spec 16 false "$T/bn" 1.0e-9 1 "" >"$T/bn.yaml"
$DEFT classification train -e "$T/bn.yaml" -r "$T/bnrun" >"$T/bn.log" 2>&1 || { tail -5 "$T/bn.log"; exit 1; }
PRE="pretrained_model_path: $T/bnrun/weights/latest.safetensors"
spec 8 true "$T/train" 0.05 5 "$PRE" >"$T/two.yaml"
spec 16 true "$T/train" 0.05 5 "$PRE" >"$T/one.yaml"

# the uninterrupted runs, once
$MPIRUN -np 2 "$DEFT" classification train -e "$T/two.yaml" -r "$T/ref2" >"$T/ref2.log" 2>&1 ||
    { tail -5 "$T/ref2.log"; exit 1; }
$DEFT classification train -e "$T/one.yaml" -r "$T/ref1" >"$T/ref1.log" 2>&1 || { tail -5 "$T/ref1.log"; exit 1; }
# a step's time (the training loop over its 20 steps, validation included)
STEP_S=$(sed -n 's/.*all-reduce [0-9.]* s of \([0-9.]*\) s on rank 0.*/\1/p' "$T/ref2.log" | awk -v n=$STEPS '{print $1 / n}')
[ -n "$STEP_S" ] || STEP_S=0.3

# bit for bit (weights and optimizer state): exit 0 when equal
same_bits() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, json, struct
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}, \
        json.loads(h["__metadata__"]["train_state"])["step"]
(a, sa), (b, sb) = load(sys.argv[1]), load(sys.argv[2])
diff = [k for k in b if a.get(k) != b[k]]
print(f"step {sa}/{sb} {len(a)} tensors, {len(diff)} differ {' '.join(diff[:3])}")
sys.exit(0 if a.keys() == b.keys() and not diff and sa == sb else 1)
PY
}
# max|a-b| / max|b| over the weights (not the optimizer state), worst tensor
rel_diff() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, json, struct, numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__" and not k.startswith("__optim__")}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys() and len(a) > 100
w = max((float(np.abs(a[k] - b[k]).max()) / float(np.abs(b[k]).max()), k) for k in a if np.abs(b[k]).max() >= 1e-6)
print(f"{w[0]:.2e} {w[1]}")
PY
}
ckpt_step() {
    /usr/bin/python3 -c "
import sys, json, struct
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
print(json.loads(json.loads(b[8:8 + n])['__metadata__']['train_state'])['step'])" "$1"
}

echo "seed $SEED, $ROUNDS rounds; a step takes ~${STEP_S} s here (2 ranks, mpirun); $STEPS steps of global batch 16, a checkpoint every 4"
awk -v s="$SEED" -v n="$ROUNDS" -v m=$STEPS 'BEGIN {srand(s); for (i = 1; i <= n; i++) printf "%d %.3f\n", 1 + int(rand() * (m - 1)), rand()}' \
    >"$T/draws"
printf "%-5s %-6s %-8s %-8s %-6s %-7s %-10s %-10s %-22s %s\n" round "kill" "+delay" "end(s)" named "ckpt" "loads" \
    "2 ranks" "1 x 16 (worst rel)" verdict >"$T/table"
passed=0 i=0
while read -r k frac <&3; do
    i=$((i + 1))
    R=$T/r$i fail=""
    delay=$(awk "BEGIN {printf \"%.3f\", $frac * $STEP_S}")
    $MPIRUN -np 2 "$DEFT" classification train -e "$T/two.yaml" -r "$R" </dev/null >"$R.log" 2>&1 &
    mpi=$!
    # rank 1's pid (its environment says its rank), then its step K
    r1="" w=0
    while [ -z "$r1" ] && [ $w -lt 600 ]; do
        for p in $(pgrep -f "classification train -e $T/two.yaml -r $R\$" 2>/dev/null); do
            tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && r1=$p
        done
        [ -z "$r1" ] && sleep 0.05
        w=$((w + 1))
    done
    w=0
    while ! grep -q "rank 1: step $k done" "$R.log" && kill -0 $mpi 2>/dev/null && [ $w -lt 1200 ]; do
        sleep 0.02; w=$((w + 1)); done
    sleep "$delay"
    if [ -n "$r1" ] && kill -9 "$r1" 2>/dev/null; then
        t0=$(date +%s.%N)
        w=0; while kill -0 $mpi 2>/dev/null && [ $w -lt 600 ]; do sleep 0.02; w=$((w + 1)); done
        t1=$(date +%s.%N)
        kill -9 $mpi 2>/dev/null
        wait $mpi; rc=$?
        end=$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")
        awk "BEGIN {exit !($end <= 10)}" && [ $rc -ne 0 ] || fail="$fail job-end($end s, exit $rc)"
    else
        wait $mpi; end="-"; fail="$fail no-kill(rank 1 pid '$r1' gone: $(tail -2 "$R.log" | tr '\n' ' '))"
    fi
    if grep -v "rank 1: step" "$R.log" | grep -qi "rank 1"; then named=yes; else named=no; fail="$fail not-named"; fi
    killed_at=$(grep -o "rank 1: step [0-9]* done" "$R.log" | tail -1 | awk '{print $4}')
    if [ -e "$R/weights/latest.safetensors" ]; then
        ck=$(ckpt_step "$R/weights/latest.safetensors")
        if $DEFT model info -m "$R/weights/latest.safetensors" >/dev/null 2>"$R.info"; then loads=yes
        else loads=no; fail="$fail ckpt-does-not-load"; fi
        cp -r "$R" "$R.one"
        $MPIRUN -np 2 "$DEFT" classification train -e "$T/two.yaml" -r "$R" --resume >"$R.resume2.log" 2>&1 ||
            fail="$fail resume2($(tail -1 "$R.resume2.log"))"
        $DEFT classification train -e "$T/one.yaml" -r "$R.one" --resume >"$R.resume1.log" 2>&1 ||
            fail="$fail resume1($(tail -1 "$R.resume1.log"))"
    else
        # killed before the first checkpoint: nothing to resume, start again
        ck=none loads=-
        if $DEFT classification train -e "$T/two.yaml" -r "$R" --resume >"$R.refuse.log" 2>&1 ||
           ! grep -q "nothing to resume" "$R.refuse.log"; then fail="$fail resume-without-checkpoint($(tail -1 "$R.refuse.log"))"; fi
        cp -r "$R" "$R.one"
        $MPIRUN -np 2 "$DEFT" classification train -e "$T/two.yaml" -r "$R" --overwrite >"$R.resume2.log" 2>&1 ||
            fail="$fail restart2($(tail -1 "$R.resume2.log"))"
        $DEFT classification train -e "$T/one.yaml" -r "$R.one" --overwrite >"$R.resume1.log" 2>&1 ||
            fail="$fail restart1($(tail -1 "$R.resume1.log"))"
    fi
    if [ -e "$R/weights/latest.safetensors" ] && same_bits "$R/weights/latest.safetensors" "$T/ref2/weights/latest.safetensors" >"$R.bits"; then
        two=bitwise
    else two=differs; fail="$fail 2-ranks($(cat "$R.bits" 2>/dev/null))"; fi
    one=$([ -e "$R.one/weights/latest.safetensors" ] && rel_diff "$R.one/weights/latest.safetensors" "$T/ref1/weights/latest.safetensors")
    if [ -n "$one" ] && awk "BEGIN {exit !(${one%% *} <= 1e-5)}" && grep -q '"status":"finished"' "$R.one/status.json"; then :
    else fail="$fail 1-process(${one:-none})"; fi
    [ -z "$fail" ] && passed=$((passed + 1))
    printf "%-5s %-6s %-8s %-8s %-6s %-7s %-10s %-10s %-22s %s\n" $i "$k/${killed_at:-?}" "${delay}s" "$end" $named "$ck" "$loads" "$two" \
        "$(echo "${one:-none}" | awk '{print $1}')" "${fail:-ok}" | tee -a "$T/table"
    rm -rf "$R" "$R.one"
done 3<"$T/draws"
echo
cat "$T/table"
echo "kill: rank 1's step K after which it was killed (requested/last reported); end: seconds from kill -9 to mpirun's exit;"
echo "ckpt: the step of the last checkpoint; 2 ranks: the resumed 2-rank run against the uninterrupted one (weights and"
echo "optimizer state); 1 x 16: the same checkpoint resumed by 1 process x batch 16, worst tensor max|a-b|/max|b| against 1 process"
echo "$passed of $ROUNDS rounds passed (seed $SEED)"
[ $passed -eq "$ROUNDS" ]
