#!/bin/sh
# Export check of every classification architecture deft builds (the test
# tests/cli/test_export_onnx.sh runs one per family): onnx.checker,
# onnxruntime, OpenCV DNN and deft's re-import against deft's own outputs.
#   sh bench/export_archs.sh [build/deft]
cd "$(dirname "$0")/.." || exit 1
EXPORT_ARCHS="resnet10:32 resnet18:32 resnet34:32 resnet50:32 resnet101:32 resnet152:32
mobilenet_v1:32 mobilenet_v2:32 vgg16:32 vgg19:32 vgg16_bn:32 vgg19_bn:32 squeezenet1_0:64
squeezenet1_1:64 googlenet:64 efficientnet_b0:32 efficientnet_b1:32 efficientnet_b2:32
efficientnet_b3:32 darknet19:32 darknet53:32 cspdarknet53:64" \
DEFT_SOURCE_DIR=$PWD DEFT_BIN=${1:-build/deft} exec sh tests/cli/test_export_onnx.sh
