#!/bin/sh
# faster_rcnn and ssd specs: TAO's sample specs load and --dry_run exits 2
# naming exactly what deft does not read (tfrecords_path); alternatives given
# together are named both; typos and bad list strings get file:line; list
# strings evaluate 1.0/3.0 and refuse anything but arithmetic; on a small
# KITTI set, --dry_run reports the boxes no anchor/prior reaches (with their
# sizes) and exits 2, exits 0 once the anchors cover them; nothing is written.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
TS=$SHARED/tao_specs
[ -f "$TS/ssd_train_resnet18_kitti.txt" ] || { echo "SKIP: $TS not found"; exit 77; }
expect() { # name, exit code, pattern, deft args...
    name=$1 want=$2 pat=$3; shift 3
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq "$want" ] && grep -qE "$pat" "$T/out" && ok "$name: exit $rc, $(grep -oE "$pat" "$T/out" | head -1)" ||
        { bad "$name (exit $rc, want $want /$pat/)"; cat "$T/out"; }
}
expect "TAO ssd sample" 2 "data_sources\[0\]\.tfrecords_path: deft does not read TFRecords" ssd train -e "$TS/ssd_train_resnet18_kitti.txt" -r "$T/r" --dry_run
grep -q "priors total : 11658" "$T/out" && ok "ssd summary: 11658 priors (38/19/10/5/3/2 maps x 6)" || bad "ssd prior count"
expect "TAO faster_rcnn sample" 2 "data_sources\[0\]\.tfrecords_path: deft does not read TFRecords" faster_rcnn train -e "$TS/faster_rcnn_train_resnet18_kitti.txt" -r "$T/r" --dry_run
grep -q "map 24x78, 16848 anchors" "$T/out" && ok "faster_rcnn summary: 24x78 map, 16848 anchors" || bad "frcnn anchor count"
S=$TS/ssd_train_resnet18_kitti.txt F=$TS/faster_rcnn_train_resnet18_kitti.txt
sed 's|aspect_ratios_global: .*|&\n  aspect_ratios: "[[1.0], [1.0], [1.0], [1.0], [1.0], [1.0]]"|' "$S" >"$T/both_ar.txt"
expect "both aspect lists" 2 "both_ar.txt:[0-9]+:[0-9]+: ssd_config.aspect_ratios and ssd_config.aspect_ratios_global are alternatives" ssd train -e "$T/both_ar.txt" -r "$T/r" --dry_run
sed 's|  scales: .*|&\n  min_scale: 0.1\n  max_scale: 0.9|' "$S" >"$T/both_sc.txt"
expect "scales and min_scale" 2 "both_sc.txt:[0-9]+:[0-9]+: ssd_config.scales and ssd_config.min_scale are alternatives" ssd train -e "$T/both_sc.txt" -r "$T/r" --dry_run
sed 's|^size_height_width {|size_min { min: 400 }\n&|' "$F" >"$T/both_size.txt"
expect "size_min and size_height_width" 2 "both_size.txt:[0-9]+:[0-9]+: 'size_height_width' and 'size_min' \(line [0-9]+\) are alternatives" faster_rcnn train -e "$T/both_size.txt" -r "$T/r" --dry_run
sed 's|gt_matching_iou_threshold: 0.5|&\ngt_matching_iou_threshold_range { start: 0.5 step: 0.05 end: 1.0 }|' "$F" >"$T/both_iou.txt"
expect "IoU and IoU range" 2 "evaluation_config.gt_matching_iou_threshold_range and evaluation_config.gt_matching_iou_threshold are alternatives" faster_rcnn train -e "$T/both_iou.txt" -r "$T/r" --dry_run
sed 's|two_boxes_for_ar1|two_boxes_for_ar|' "$S" >"$T/typo.txt"
expect "ssd typo" 2 "typo.txt:[0-9]+:[0-9]+: unknown key 'two_boxes_for_ar'.*did you mean 'two_boxes_for_ar1'" ssd train -e "$T/typo.txt" -r "$T/r" --dry_run
sed 's|rpn_stride: 16|rpn_strid: 16|' "$F" >"$T/typo2.txt"
expect "faster_rcnn typo" 2 "typo2.txt:[0-9]+:[0-9]+: unknown key 'rpn_strid'" faster_rcnn train -e "$T/typo2.txt" -r "$T/r" --dry_run
sed 's|1.0/3.0|abs(1)|' "$S" >"$T/evil.txt"
expect "list string is arithmetic only" 2 "evil.txt:[0-9]+:[0-9]+: ssd_config.aspect_ratios_global .*expected a number" ssd train -e "$T/evil.txt" -r "$T/r" --dry_run
expect "rpn_stride 8" 2 "rpn_stride" faster_rcnn train -e "$F" --set model_config.rpn_stride=8 -r "$T/r" --dry_run
expect "ssd export without a spec" 2 "nms trt needs the spec's nms_config" ssd export -m x -o y.onnx
expect "faster_rcnn export of a missing model" 2 "x: no such model file" faster_rcnn export -m x -o y.onnx
# a small KITTI set: 300x300 images, one 150x150 box and one 6x6 box on a stride-8 prior centre
if /usr/bin/python3 -c "import numpy, cv2" 2>/dev/null; then
    mkdir -p "$T/d/images" "$T/d/labels"
    /usr/bin/python3 -c "import numpy, cv2; [cv2.imwrite('$T/d/images/%d.png' % i, numpy.zeros((300, 300, 3), numpy.uint8)) for i in range(2)]"
    echo "car 0 0 0 75 75 225 225 0 0 0 0 0 0 0" >"$T/d/labels/0.txt"
    echo "pedestrian 0 0 0 95.68 95.68 101.68 101.68 0 0 0 0 0 0 0" >"$T/d/labels/1.txt"
    sed "s|tfrecords_path: .*|label_directory_path: \"$T/d/labels\"\n    image_directory_path: \"$T/d/images\"|; s|include_difficult_in_training: true|&\n  image_extension: \"png\"|" "$S" >"$T/kitti.txt"
    expect "ssd: a 6x6 box has no prior" 2 "1 of 2 training boxes have no anchor at IoU >= 0.5 \(ssd_config.pos_iou_thresh\)" ssd train -e "$T/kitti.txt" -r "$T/r" --dry_run
    grep -q "box sizes (w x h, input pixels) from 6..6 x 6..6" "$T/out" && ok "the size concerned is reported (6x6)" || { bad "sizes not reported"; cat "$T/out"; }
    expect "ssd: smaller scales cover it" 0 "0 of 2 training boxes" ssd train -e "$T/kitti.txt" --set 'ssd_config.scales="[0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"' -r "$T/r" --dry_run
    expect "ssd: pos_iou_thresh 0.95 leaves the big box unmatched too" 2 "2 of 2 training boxes" ssd train -e "$T/kitti.txt" --set ssd_config.pos_iou_thresh=0.95 --set ssd_config.neg_iou_thresh=0.4 -r "$T/r" --dry_run
    sed "s|tfrecords_path: .*|label_directory_path: \"$T/d/labels\"|; s|image_directory_path: .*|image_directory_path: \"$T/d/images\"|; s|height: 384|height: 320|; s|width: 1248|width: 320|; s|output_image_width: 1248|output_image_width: 320|; s|output_image_height: 384|output_image_height: 320|" "$F" >"$T/kf.txt"
    expect "faster_rcnn: the 6x6 box has no anchor" 2 "1 of 2 training boxes have no anchor at IoU >= 0.7 \(training_config.rpn_max_overlap\)" faster_rcnn train -e "$T/kf.txt" --set 'model_config.anchor_box_config.scale=[64, 160, 256]' -r "$T/r" --dry_run
    [ ! -e "$T/r" ] && ok "nothing written by the dry runs" || bad "the dry runs wrote $T/r"
else
    skip_part "numpy/cv2 missing: anchor coverage on KITTI data not run"
fi
finish
