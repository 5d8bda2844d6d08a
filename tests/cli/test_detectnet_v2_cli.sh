#!/bin/sh
# detectnet_v2 specs on the command line: TAO's four sample specs pass
# --dry_run or exit 2 naming the field (their /workspace paths do not exist
# here: the warning names file:line); a typo exits 2 at file:line; a spec given
# to the wrong action is named; dataset_convert on a small KITTI folder writes
# TAO's random partition (sorted images, first val_split% = fold 0) as lists
# and a manifest, and a training spec whose tfrecords_path globs that folder
# dry-runs with exit 0, reading the images and labels; unfinished actions
# exit 2 saying so.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
TS=$SHARED/tao_specs
[ -f "$TS/detectnet_v2_train_resnet18_kitti.txt" ] || { echo "SKIP: $TS not found"; exit 77; }
expect() { # name, exit code, pattern, deft args...
    name=$1 want=$2 pat=$3; shift 3
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq "$want" ] && grep -qE -- "$pat" "$T/out" && ok "$name: exit $rc, $(grep -oE -- "$pat" "$T/out" | head -1)" ||
        { bad "$name (exit $rc, want $want)"; cat "$T/out"; }
}
D="detectnet_v2"
expect "TAO train spec" 2 "detectnet_v2_train_resnet18_kitti.txt:94: model_config.pretrained_model_file: '[^']*' does not exist" \
    $D train -e "$TS/detectnet_v2_train_resnet18_kitti.txt" --dry_run
grep -q "grid 78 x 24" "$T/out" && grep -q "tfrecords_path '/workspace[^']*' matches no deft dataset_convert output" "$T/out" &&
    ok "train dry run: summary and the TFRecords note" || { bad "train dry run summary"; cat "$T/out"; }
expect "TAO retrain QAT spec" 2 "detectnet_v2_retrain_resnet18_kitti_qat.txt:94: model_config.pretrained_model_file" \
    $D train -e "$TS/detectnet_v2_retrain_resnet18_kitti_qat.txt" --dry_run
grep -q "QAT" "$T/out" && grep -q "graph and weights" "$T/out" && ok "retrain: QAT and load_graph in the summary" ||
    { bad "retrain summary"; cat "$T/out"; }
expect "TAO inference spec" 2 "detectnet_v2_inference_kitti_tlt.txt:16: inferencer_config.tlt_config.model: '[^']*' does not exist" \
    $D inference -e "$TS/detectnet_v2_inference_kitti_tlt.txt" -i "$T" --dry_run
expect "TAO tfrecords spec" 2 "kitti_config: image folder '/workspace/tao-experiments/data/training/image_2'" \
    $D dataset_convert -d "$TS/detectnet_v2_tfrecords_kitti_trainval.txt" -o "$T/x"
expect "inference spec given to train" 2 "inference spec .*detectnet_v2 inference -e" \
    $D train -e "$TS/detectnet_v2_inference_kitti_tlt.txt" --dry_run
sed 's/dbscan_min_samples: 1/dbscan_min_sample: 1/' "$TS/detectnet_v2_train_resnet18_kitti.txt" >"$T/typo.txt"
L=$(grep -n dbscan_min_sample: "$T/typo.txt" | head -1 | cut -d: -f1)
expect "typo" 2 "typo.txt:$L:[0-9]+: unknown key 'dbscan_min_sample'.*did you mean 'dbscan_min_samples'" \
    $D train -e "$T/typo.txt" --dry_run
sed 's/arch: "resnet"/arch: "efficientnet_b0"/' "$TS/detectnet_v2_train_resnet18_kitti.txt" >"$T/arch.txt"
L=$(grep -n 'arch: "efficientnet_b0"' "$T/arch.txt" | cut -d: -f1)
expect "backbone deft does not build" 2 "arch.txt:$L:[0-9]+: model_config.arch 'efficientnet_b0'" \
    $D train -e "$T/arch.txt" --dry_run
expect "--set a missing class" 2 "--set 'postprocessing_config.target_class_config.1.key=bus'.*'bus' is not a class" \
    $D train -e "$TS/detectnet_v2_train_resnet18_kitti.txt" --dry_run --set postprocessing_config.target_class_config.1.key=bus

# a small KITTI folder: 10 images, labels with capitalised names (TAO lower-cases them)
K=$T/kitti/training
mkdir -p "$K/image_2" "$K/label_2" "$T/tfrecords/kv"
IMG=$SHARED/data/sample_images/astronaut.png
for i in 0 1 2 3 4 5 6 7 8 9; do
    cp "$IMG" "$K/image_2/00000$i.png"
    printf 'Car 0.00 0 0 10 20 110 120 0 0 0 0 0 0 0\nPedestrian 0.00 1 0 200 50 240 150 0 0 0 0 0 0 0\n' >"$K/label_2/00000$i.txt"
done
sed "s|/workspace/tao-experiments/data/training|$K|" "$TS/detectnet_v2_tfrecords_kitti_trainval.txt" |
    sed 's/val_split: 14/val_split: 20/' >"$T/convert.txt"
expect "dataset_convert" 0 "fold 0 \(validation\): 2 images" $D dataset_convert -d "$T/convert.txt" -o "$T/tfrecords/kv/kitti_trainval"
grep -qE "car +10 +\(written 'Car'\)" "$T/out" && grep -qE "pedestrian +10" "$T/out" &&
    ok "dataset_convert: classes counted lower-cased, the rewritten names said" || { bad "class counts"; cat "$T/out"; }
[ "$(cat "$T/tfrecords/kv/kitti_trainval-fold-000-of-002.txt")" = "$(printf '000000\n000001')" ] &&
    [ "$(wc -l <"$T/tfrecords/kv/kitti_trainval-fold-001-of-002.txt")" -eq 8 ] &&
    grep -q '"deft_dataset_convert"' "$T/tfrecords/kv/kitti_trainval.deft.json" &&
    ok "fold lists (first 20% of the sorted images = fold 0) and manifest" || bad "fold files"
sed "s|/workspace/tao-experiments/data/tfrecords/kitti_trainval/\*|$T/tfrecords/kv/*|; s|/workspace/tao-experiments/data/training|$K|" \
    "$TS/detectnet_v2_train_resnet18_kitti.txt" | grep -v pretrained_model_file >"$T/train.txt"
expect "train dry run on converted data" 0 "training data: 8 images, 16 boxes" $D train -e "$T/train.txt" --dry_run
grep -q "tfrecords_path -> .*kitti_trainval.deft.json (deft reads the KITTI images and labels" "$T/out" &&
    ok "tfrecords_path resolved to the manifest, said so" || { bad "resolution note"; cat "$T/out"; }
expect "evaluate dry run: validation fold" 2 "validation data: 2 images, 4 boxes" $D evaluate -e "$T/train.txt" -m "$T/none" --dry_run
# image_directory_path alone (KITTI folders inside it), no tfrecords_path
grep -v tfrecords_path "$T/train.txt" >"$T/train_img.txt"
expect "image_directory_path with image_2/label_2" 0 "training data: 10 images, 20 boxes" $D train -e "$T/train_img.txt" --dry_run
# the engine runs (tests/cli/test_detectnet_v2_workflow.sh); what it does not do yet exits 2 before any work
sed 's/soft_start_annealing_schedule {/early_stopping_annealing_schedule { soft_start_epochs: 1 annealing_epochs: 1 patience_steps: 1/; /soft_start:/d; /annealing:/d' \
    "$T/train.txt" >"$T/early.txt"
expect "train: early stopping schedule" 2 "early_stopping_annealing_schedule is not finished yet \(issue 20\)" $D train -e "$T/early.txt" -r "$T/early_run"
[ ! -e "$T/early_run" ] && ok "nothing written for the refused spec" || bad "refused spec wrote $T/early_run"
expect "prune of a missing model" 2 "x.safetensors" $D prune -m "$T/x.safetensors" -o "$T/y.safetensors" -pth 0.1
expect "export of a missing model" 2 "x.safetensors: no such model file" $D export -m "$T/x.safetensors" -o "$T/y.onnx"
expect "calibration_tensorfile" 2 "detectnet_v2 calibration_tensorfile: not finished yet \(issue 20\)" \
    $D calibration_tensorfile -e "$T/train.txt" -o "$T/t"
$DEFT $D --help-spec >"$T/help" 2>&1 && grep -q "kitti_config.val_split" "$T/help" &&
    grep -q "bbox_handler_config.classwise_bbox_handler_config" "$T/help" && ok "--help-spec lists the three schemas" ||
    bad "--help-spec"
finish
