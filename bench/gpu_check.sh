#!/bin/sh
# Everything issue 8 still has to show on a GPU, as one script for a session
# that is lent one (about 10 minutes on an H200):
#   1. build with nvcc (make CUDA=1) and run the op matrix on the GPU: fp32, bf16, fp16
#   2. ResNet-18 training, 224x224, batch 64, AMP: deft vs PyTorch (channels_last + autocast)
#   3. hymenoptera fine-tuning on the GPU with the CPU's spec (CPU figure: 0.9150 top-1)
#   bench/gpu_check.sh [OUT]    (OUT: logs; STEP=1,2,3 to run a subset)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-${OUT:-/tmp/deft-gpu}}
STEPS=${STEP:-1,2,3}
mkdir -p "$OUT"
cd "$SRC"
nvidia-smi -L 2>&1 | head -2
PATH="$PATH:/usr/local/cuda/bin" make CUDA=1 >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
B=build-cuda
case ",$STEPS," in *,1,*)
    for m in fp32 bf16 fp16; do
        $B/test_cpu_vs_ref cuda $m >"$OUT/op_matrix_$m.log" 2>&1
        echo "op matrix cuda $m: exit $? ($(tail -1 "$OUT/op_matrix_$m.log"))"
    done
    grep -h "^  " "$OUT/op_matrix_fp32.log" | sort -k2 -g | tail -5 ;;
esac
case ",$STEPS," in *,2,*)
    for amp in bf16 fp16; do
        d=$($B/deft bench train --arch resnet18 --size 224 --batch 64 --steps 20 --warmup 5 --backend cuda --use_amp $amp)
        t=$(/usr/bin/python3 bench/torch_gpu_train.py --batch 64 --size 224 --amp $amp)
        echo "deft  $d"; echo "torch $t"
        echo "$d $t" | sed 's/.*"images_per_s": \([0-9.]*\).*"images_per_s": \([0-9.]*\).*/\1 \2/' |
            awk -v amp=$amp '{ printf "resnet18 b64 %s: deft %.1f img/s, torch %.1f img/s, ratio %.2f (must be >= 0.8)\n", amp, $1, $2, $1 / $2 }'
    done ;;
esac
case ",$STEPS," in *,3,*)
    spec=specs/hymenoptera_squeezenet_finetune.yaml
    $B/deft classification train -e $spec -r "$OUT/ft" --backend cuda >"$OUT/ft.log" 2>&1
    echo "fine-tune exit $?: $($B/deft classification evaluate -e $spec -m "$OUT/ft/weights/best.safetensors" --backend cuda 2>&1 | grep top-1)"
    echo "(CPU, same spec and seed: 0.9150)" ;;
esac
