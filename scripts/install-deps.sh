#!/bin/sh
# Install the Debian packages deft needs to build and test, only those missing.
# libopenblas0-pthread: the PyTorch peers otherwise run their Linear layers on the
# reference BLAS (single-threaded, several times slower), an unfair comparison.
# Idempotent and non-interactive; run as root (or with sudo available).
set -eu
BUILD_PKGS="build-essential cmake pkg-config libdnnl-dev libyaml-dev libcjson-dev \
libjpeg62-turbo-dev libpng-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libhdf5-dev libcurl4-openssl-dev libxml2-dev"
TEST_PKGS="python3-torch python3-torchvision python3-numpy python3-onnx python3-opencv python3-h5py libopenblas0-pthread \
openmpi-bin libopenmpi-dev libonnx-testdata"
want="$BUILD_PKGS"
[ "${1:-}" = "--test" ] && want="$BUILD_PKGS $TEST_PKGS"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# onnxruntime-node (the ONNX peer of the tests) into ./node_modules; its install
# script only fetches GPU providers, so it is skipped. Tests skip without it.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--test" ] && [ ! -d "$ROOT/node_modules/onnxruntime-node" ] && command -v npm >/dev/null; then
    echo "install-deps: npm install onnxruntime-node"
    (cd "$ROOT" && npm install --no-save --no-audit --no-fund --ignore-scripts onnxruntime-node@1 >/dev/null 2>&1) ||
        echo "install-deps: npm could not install onnxruntime-node; tests that need it will skip"
fi
exit 0
