#!/bin/sh
# make demo: train resnet10 on generated images and show the loss falling.
# (Until the classification workflow lands, this is deft's main job.)
BUILD=${1:-build}
set -e
"$BUILD/deft" demo --steps ${STEPS:-60} -r ${DIR:-runs/demo}
echo
echo "next: '$BUILD/deft model info -m ${DIR:-runs/demo}/weights/latest.safetensors' shows the layers;"
echo "      '$BUILD/deft bench train --arch resnet18' times a training step."
