#!/bin/sh
# Install the Debian packages deft needs to build and test, only those missing.
# Idempotent and non-interactive; run as root (or with sudo available).
set -eu
BUILD_PKGS="build-essential cmake pkg-config libdnnl-dev libyaml-dev libcjson-dev \
libjpeg62-turbo-dev libpng-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libhdf5-dev libcurl4-openssl-dev"
TEST_PKGS="python3-torch python3-torchvision python3-numpy python3-onnx python3-opencv python3-h5py"
want="$BUILD_PKGS"
[ "${1:-}" = "--test" ] && want="$BUILD_PKGS $TEST_PKGS"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
