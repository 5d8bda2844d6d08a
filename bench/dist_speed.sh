#!/bin/sh
# Data-parallel speed on this machine (issue 23, Must-show 2): resnet18 at
# 224x224, global batch 16, synthetic input (`deft bench train`):
# 2 ranks x batch 8 x 1 thread (mpirun, TCP loopback) against 1 process x
# batch 16 x 2 threads, measured in one run. Prints both throughputs, the
# ratio, the all-reduce time per step and its share, and the all-reduce
# alone after a barrier: its bandwidth (resnet18's 46.8 MB of gradients) is
# what the scaling note in the README extrapolates from.
BUILD=${1:-build}
DEFT=$BUILD/deft
STEPS=${STEPS:-6}
command -v mpirun >/dev/null || { echo "needs mpirun (openmpi-bin)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
one=$(OMP_NUM_THREADS=2 $DEFT bench train --arch resnet18 --size 224 --batch 16 --threads 2 --steps $STEPS --warmup 1 |
      sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p')
out=$(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,tcp -x OMP_NUM_THREADS=1 -np 2 \
      $DEFT bench train --arch resnet18 --size 224 --batch 8 --threads 1 --steps $STEPS --warmup 1)
two=$(echo "$out" | sed -n 's/.*"global_images_per_s": \([0-9.]*\).*/\1/p')
# the same with one reduction after backward (no overlap), for comparison
flat=$(DEFT_DIST_BUCKET_MB=0 mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,tcp -x OMP_NUM_THREADS=1 \
      -x DEFT_DIST_BUCKET_MB -np 2 $DEFT bench train --arch resnet18 --size 224 --batch 8 --threads 1 --steps $STEPS --warmup 1 |
      sed -n 's/.*"global_images_per_s": \([0-9.]*\).*/\1/p')
ms=$(echo "$out" | sed -n 's/.*"allreduce_ms_per_step": \([0-9.]*\).*/\1/p')
share=$(echo "$out" | sed -n 's/.*"allreduce_share": \([0-9.]*\).*/\1/p')
echo "1 process x batch 16 x 2 threads: $one img/s"
echo "2 ranks x batch 8 x 1 thread (mpirun, tcp): $two img/s"
echo "2 ranks, one reduction after backward (DEFT_DIST_BUCKET_MB=0): $flat img/s"
awk "BEGIN{printf \"ratio 2 ranks / 1 process: %.3f (without overlap: %.3f)\n\", $two/$one, $flat/$one}"
alone=$(echo "$out" | sed -n 's/.*"allreduce_alone_ms": \([0-9.]*\).*/\1/p')
mb=$(echo "$out" | sed -n 's/.*"gradient_mb": \([0-9.]*\).*/\1/p')
exp_ms=$(echo "$out" | sed -n 's/.*"exposed_ms_per_step": \([0-9.]*\).*/\1/p')
exp_share=$(echo "$out" | sed -n 's/.*"exposed_share": \([0-9.]*\).*/\1/p')
echo "all-reduce in the steps: $ms ms per step, $share of the step time (the transfer and the wait for the slower rank)"
echo "not hidden behind backward (the compute waited for the buckets): $exp_ms ms per step, $exp_share of the step time"
echo "all-reduce alone (after a barrier): $alone ms for $mb MB of gradients"
# a ring all-reduce on N ranks moves 2 (N-1)/N x the bytes through each rank's link
awk "BEGIN{printf \"all-reduce bus bandwidth: %.2f GB/s (2 ranks, TCP loopback)\n\", 2*0.5*$mb*1e6/($alone*1e-3)/1e9}"
