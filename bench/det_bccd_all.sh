#!/bin/sh
# Issue 20's BCCD comparison as one resumable chain (hours to days on a 2-core CPU; not part of
# make test): detectnet_v2, ssd and faster_rcnn (ResNet-18, from scratch, the specs' epochs unless
# EPOCHS_* say otherwise) and the torchvision peers (ssdlite320_mobilenet_v3_large and
# fasterrcnn_mobilenet_v3_large_fpn, same epochs, same 416x320 input) one after the other, then
# retinanet (ResNet-18).
# Run it again after an interruption: a finished stage (its done file) is skipped, a deft run with
# a checkpoint continues with --resume, a peer starts over. Results under $OUT (default
# runs/bccd_all): <stage>/eval.txt, <stage>/peer.json, and summary.txt, one line a stage.
# Run from the repository root; under `nice -n 19` it takes only idle CPU (its wall times are
# then not speed figures: time one epoch of each on a quiet machine for those).
# Usage: bench/det_bccd_all.sh [deft binary]   (EPOCHS_DNV2, EPOCHS_SSD, EPOCHS_FRCNN, EPOCHS_RETINA)
DEFT=$(realpath "${1:-build/deft}")
cd "$(dirname "$0")/.."  # the specs' data paths are relative to the repository root
OUT=${OUT:-runs/bccd_all}
BCCD=${BCCD:-../shared/data/bccd}
mkdir -p "$OUT"
log() { echo "$(date '+%F %T') $*" | tee -a "$OUT/summary.txt"; }

# detectnet_v2's spec reads KITTI-style image/label folders: link BCCD's splits once
kitti_links() {
    b=$(cd "$BCCD" && pwd)
    for split in train val; do
        [ -d runs/bccd_kitti/$split/labels ] && continue
        mkdir -p runs/bccd_kitti/$split/images runs/bccd_kitti/$split/labels
        while read -r s; do
            ln -sf "$b/JPEGImages/$s.jpg" runs/bccd_kitti/$split/images/
            ln -sf "$b/labels_kitti/$s.txt" runs/bccd_kitti/$split/labels/
        done <"$b/ImageSets/Main/$split.txt"
    done
}

# deft_stage NETWORK SPEC EPOCHS: train (or resume), then evaluate best.safetensors
deft_stage() {
    net=$1 spec=$2 epochs=$3 dir=$OUT/$1
    [ -f "$dir/done" ] && return 0
    if [ -f "$dir/weights/latest.safetensors" ]; then how=--resume; else how=--overwrite; fi
    log "$net: train $how ($epochs epochs)"
    start=$(date +%s)
    "$DEFT" "$net" train -e "$spec" -r "$dir" $how --set training_config.num_epochs="$epochs" \
        >>"$dir.train.log" 2>&1 || { log "$net: train failed (exit $?), see $dir.train.log"; return 1; }
    wall=$(( $(date +%s) - start ))
    m=$dir/weights/best.safetensors
    [ -f "$m" ] || m=$dir/weights/latest.safetensors
    "$DEFT" "$net" evaluate -e "$spec" -m "$m" >"$dir/eval.txt" 2>&1 || { log "$net: evaluate failed"; return 1; }
    log "$net: $epochs epochs, this leg $wall s; $(grep -m1 '^mAP' "$dir/eval.txt")"
    touch "$dir/done"
}

peer_stage() {
    arch=$1 epochs=$2 dir=$OUT/peer_$1
    [ -f "$dir/done" ] && return 0
    mkdir -p "$dir"
    log "peer $arch: train ($epochs epochs)"
    /usr/bin/python3 bench/det_bccd_peer.py --arch "$arch" --epochs "$epochs" --out "$dir" --deft "$DEFT" \
        --data "$BCCD" >"$dir/peer.log" 2>&1 || { log "peer $arch: failed, see $dir/peer.log"; return 1; }
    tail -1 "$dir/peer.log" >"$dir/peer.json"
    log "peer $arch: $(cat "$dir/peer.json")"
    touch "$dir/done"
}

kitti_links
deft_stage detectnet_v2 specs/detectnet_v2_resnet18_bccd.txt "${EPOCHS_DNV2:-60}"
peer_stage ssdlite320_mobilenet_v3_large "${EPOCHS_SSD:-60}"
deft_stage ssd specs/ssd_resnet18_bccd.txt "${EPOCHS_SSD:-60}"
deft_stage faster_rcnn specs/faster_rcnn_resnet18_bccd.txt "${EPOCHS_FRCNN:-30}"
peer_stage fasterrcnn_mobilenet_v3_large_fpn "${EPOCHS_FRCNN:-30}"
deft_stage retinanet specs/retinanet_resnet18_bccd.txt "${EPOCHS_RETINA:-60}"
log "chain finished"
