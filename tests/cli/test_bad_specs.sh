#!/bin/sh
# Bad training specs exit 2 with the spec's file:line in the message: an
# unknown key, a wrong type, a missing required field (with --dry_run), and
# a path that does not exist (in a real run), and a spec file that does not exist;
# augmentation fields that a switch turns off are named with file:line.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
S=$SRC/specs/hymenoptera_resnet18_scratch.yaml
sed 's/n_epochs:/n_epoch:/' "$S" >"$T/unknown.yaml"
sed 's/n_epochs: [0-9]*/n_epochs: many/' "$S" >"$T/type.yaml"
grep -v "train_dataset_path" "$S" >"$T/missing.yaml"
sed "s|train_dataset_path: .*|train_dataset_path: $T/nonexistent/train|; s|val_dataset_path: .*|val_dataset_path: $T|" "$S" >"$T/path.yaml"
expect() { # name, pattern, deft args...
    name=$1 pat=$2; shift 2
    $DEFT "$@" >"$T/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -qE "$pat" "$T/out" && ok "$name: exit 2, $(grep -oE "$pat" "$T/out" | head -1)" ||
        { bad "$name (exit $rc)"; cat "$T/out"; }
}
expect "unknown key" "unknown.yaml:[0-9]+:[0-9]+: unknown key 'n_epoch'" classification train -e "$T/unknown.yaml" -r "$T/r" --dry_run
expect "wrong type" "type.yaml:[0-9]+:[0-9]+: train_config.n_epochs: expected an integer" classification train -e "$T/type.yaml" -r "$T/r" --dry_run
expect "missing field" "missing.yaml:[0-9]+:[0-9]+: train_config is missing required field 'train_dataset_path'" classification train -e "$T/missing.yaml" -r "$T/r" --dry_run
expect "bad path" "path.yaml:[0-9]+: train_config.train_dataset_path: '[^']*' does not exist" classification train -e "$T/path.yaml" -r "$T/r"
# augmentation fields that act only with a switch are named, not silently ignored (issue 24 #6)
sed 's/    hflip_prob: 0.5/    hflip_prob: 0.5\n    brightness: 0.3\n    rotate_prob: 0.5/; s/enable_random_crop: true/enable_random_crop: false/; s/augmentation:/augmentation:\n    scale_min: 0.5/' "$S" >"$T/gated.yaml"
$DEFT classification train -e "$T/gated.yaml" -r "$T/r" --dry_run >"$T/gated.out" 2>&1
for w in "brightness has no effect while train_config.enable_color_augmentation is false" \
         "scale_min has no effect while train_config.enable_random_crop is false" "rotate_prob has no effect while rotation_degrees is 0"; do
    grep -q "gated.yaml:[0-9]*:[0-9]*: train_config.augmentation.$w" "$T/gated.out" && ok "dry run names the ignored field: ...$w" ||
        bad "no warning '$w': $(grep warning "$T/gated.out")"
done
expect "no spec file" "spec file '[^']*nope.yaml' does not exist" classification train -e "$T/nope.yaml" -r "$T/r"
finish
