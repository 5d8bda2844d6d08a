#!/bin/sh
# `deft yolo_v4 prune` / `deft yolo_v4_tiny prune`: TAO's pruning over a
# detection graph (PAN upsample + concat, SPP pools, CSP channel splits).
# --target_ratio reaches the ratio with the three head output convs kept
# whole; the pruned model evaluates; --sweep -e scores each threshold with
# val mAP (threshold 0 keeps everything, so its mAP is evaluate's); the pruned
# graph retrains through training_config.pruned_model_path; an unsupported
# pattern in front of a head (a reshape that is not a flatten), or an -el
# layer the model lacks, names the layer, exits 2 and writes nothing.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
B=$(cd "$SHARED/data/bccd" 2>/dev/null && pwd)
[ -n "$B" ] || { echo "SKIP: ../shared/data/bccd not present"; exit 77; }

head -16 "$B/ImageSets/Main/train.txt" >"$T/train.txt"
head -8 "$B/ImageSets/Main/val.txt" >"$T/val.txt"
mkspec() { # source spec -> $T/$2 on the subsets
    sed -e "s|\(\.\./\)*shared/data/bccd|$B|g" -e "s|ImageSets/Main/train.txt|X|; s|ImageSets/Main/val.txt|Y|" "$SRC/specs/$1" |
        sed -e "s|$B/X|$T/train.txt|; s|$B/Y|$T/val.txt|" >"$T/$2"
}
mkspec yolo_v4_resnet18_bccd.txt r.txt
mkspec yolo_v4_tiny_bccd.txt tiny.txt
SMALL="--set augmentation_config.output_width=128 --set augmentation_config.output_height=96 --threads 2"
# a one-epoch model finds little at IoU 0.5: score the sweep at IoU 0.1 so its figures are not all 0
LOOSE="--set eval_config.matching_iou_threshold=0.1"
$DEFT yolo_v4 train -e "$T/r.txt" -r "$T/run" $SMALL --set yolov4_config.nlayers=10 \
    --set training_config.num_epochs=1 >"$T/train.log" 2>&1 ||
    { bad "train a small yolo_v4 resnet10"; tail -5 "$T/train.log"; finish; exit 1; }
M=$T/run/weights/latest.safetensors

# --target_ratio 0.5: the ratio is reached, the heads keep every filter
$DEFT yolo_v4 prune -m "$M" -o "$T/p.safetensors" --target_ratio 0.5 -r "$T/pr" >"$T/prune.log" 2>&1
rc=$?
chk=$(/usr/bin/python3 - "$T/pr/prune/report.json" <<'EOF' 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
heads = [l for l in r["layers"] if l["name"] in ("head_s32", "head_s16", "head_s8")]
assert len(heads) == 3, heads
assert all(l["after"] == l["before"] for l in heads), heads
assert 0.4 <= r["pruning_ratio"] <= 0.5, r["pruning_ratio"]
cut = [l for l in r["layers"] if l["after"] < l["before"]]
assert any(l["name"].startswith("yolo_") for l in cut), "no PAN layer pruned"
assert any(l["name"].startswith("layer") for l in cut), "no backbone layer pruned"
print("ratio %.4f, %d of %d layers cut, heads whole" % (r["pruning_ratio"], len(cut), len(r["layers"])))
EOF
)
[ $rc -eq 0 ] && [ -f "$T/p.safetensors" ] && echo "$chk" | grep -q "heads whole" &&
    ok "yolo_v4 prune --target_ratio 0.5: $chk" || { bad "yolo_v4 prune (exit $rc): $chk"; tail -5 "$T/prune.log"; }

$DEFT yolo_v4 evaluate -e "$T/r.txt" -m "$T/p.safetensors" $SMALL >"$T/ev_p.log" 2>&1 &&
    grep -qE "^mAP \[integrate" "$T/ev_p.log" && ok "the pruned model evaluates" ||
    { bad "evaluate the pruned model"; tail -5 "$T/ev_p.log"; }

# --sweep -e: val mAP per threshold; threshold 0 prunes nothing
$DEFT yolo_v4 evaluate -e "$T/r.txt" -m "$M" $SMALL $LOOSE >"$T/ev.log" 2>&1
e=$(grep -oE "^mAP \[integrate, IoU>=0.10\]: +[0-9.]+" "$T/ev.log" | grep -oE "[0-9.]+$")
$DEFT yolo_v4 prune -m "$M" --sweep -e "$T/r.txt" -r "$T/sw" $SMALL $LOOSE >"$T/sweep.log" 2>&1
rc=$?
csv=$T/sw/prune/sweep.csv
s0=$(sed -n 2p "$csv" 2>/dev/null | cut -d, -f4)
[ $rc -eq 0 ] && head -1 "$csv" | grep -q "^threshold,param_ratio,flops_ratio,val_mAP$" && [ -n "$e" ] &&
    /usr/bin/python3 -c "
import csv
rows = list(csv.DictReader(open('$csv')))
m = [float(r['val_mAP']) for r in rows]
assert float('$e') > 0 and abs(m[0] - float('$e')) < 1e-4, (m[0], '$e')
assert len(set(round(x, 6) for x in m)) > 1, m  # the candidates were really scored
assert all(0 <= x <= 1 for x in m)
" && ok "--sweep -e: sweep.csv has val_mAP; threshold 0 scores $s0 = evaluate's $e; pruned candidates score differently" ||
    { bad "--sweep -e (exit $rc, '$s0' vs '$e')"; tail -5 "$T/sweep.log"; }

# retrain the pruned graph (TAO's pruned_model_path)
$DEFT yolo_v4 train -e "$T/r.txt" -r "$T/re" $SMALL --set training_config.num_epochs=1 \
    --set training_config.pruned_model_path="$T/p.safetensors" >"$T/re.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "training the graph of .*: a pruned model)" "$T/re.log" &&
    grep -q "0 shape mismatch, 0 without weights" "$T/re.log" && [ -f "$T/re/weights/latest.safetensors" ] &&
    ok "retrain from pruned_model_path: its graph, every weight loaded" || { bad "retrain (exit $rc)"; tail -5 "$T/re.log"; }

# YOLOv4-tiny: the layers feeding a CSP split keep every filter, the rest prunes
$DEFT yolo_v4_tiny train -e "$T/tiny.txt" -r "$T/trun" $SMALL --set training_config.num_epochs=1 >"$T/ttrain.log" 2>&1 &&
    $DEFT yolo_v4_tiny prune -m "$T/trun/weights/latest.safetensors" -o "$T/tp.safetensors" --target_ratio 0.7 \
        -r "$T/tpr" >"$T/tprune.log" 2>&1 &&
    $DEFT yolo_v4_tiny evaluate -e "$T/tiny.txt" -m "$T/tp.safetensors" $SMALL >"$T/tev.log" 2>&1
rc=$?
ratio=$(grep -oE "^Pruning ratio .*: [0-9.]+" "$T/tprune.log" | grep -oE "[0-9.]+$")
[ $rc -eq 0 ] && grep -qE "^stages.0.conv0.conv +conv +64 -> 64 +\(kept whole\)" "$T/tprune.log" &&
    /usr/bin/python3 -c "assert 0.5 < $ratio <= 0.7" 2>/dev/null &&
    ok "yolo_v4_tiny prune --target_ratio 0.7: ratio $ratio, CSP split producers whole, evaluates" ||
    { bad "yolo_v4_tiny prune (exit $rc, ratio '$ratio')"; tail -n 5 "$T/tprune.log" "$T/tev.log"; }

# an unsupported pattern in front of a head: reshape (not a flatten) after a prunable layer
/usr/bin/python3 - "$M" "$T/bad.safetensors" <<'EOF' || bad "could not build the reshape model"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
g = json.loads(h["__metadata__"]["graph"])
head = next(nd for nd in g["nodes"] if nd["name"] == "head_s8")
x = head["inputs"][0]
shp = next(v["shape"] for v in g["values"] if v["name"] == x)
N, C, H, W = shp
mid = [N, C // 2, H * 2, W]
# node outputs appear in 'values' in node order: the new ones go just before the head's own values
names = [v["name"] for v in g["values"]]
at = min(names.index(v) for v in head["inputs"][1:] + head["outputs"])
g["values"][at:at] = [{"name": "odd_reshape", "kind": "node", "dtype": "f32", "shape": mid, "flags": 0},
                      {"name": "odd_reshape_back", "kind": "node", "dtype": "f32", "shape": shp, "flags": 0}]
i = g["nodes"].index(head)
g["nodes"][i:i] = [{"op": "reshape", "name": "odd_reshape", "inputs": [x], "outputs": ["odd_reshape"],
                    "attr": {"shape": mid}},
                   {"op": "reshape", "name": "odd_reshape_back", "inputs": ["odd_reshape"],
                    "outputs": ["odd_reshape_back"], "attr": {"shape": shp}}]
head["inputs"][0] = "odd_reshape_back"
h["__metadata__"]["graph"] = json.dumps(g)
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
EOF
$DEFT yolo_v4 prune -m "$T/bad.safetensors" -o "$T/bad_out.safetensors" -r "$T/badr" >"$T/bad.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "reshape 'odd_reshape' after the prunable layer '[a-z_0-9.]*'" "$T/bad.log" &&
    [ ! -e "$T/bad_out.safetensors" ] && [ ! -e "$T/badr/prune/report.json" ] &&
    ok "unsupported reshape before a head: exit 2, $(grep -oE "after the prunable layer '[^']*'" "$T/bad.log"), nothing written" ||
    { bad "unsupported pattern (exit $rc)"; cat "$T/bad.log"; }
$DEFT yolo_v4 prune -m "$M" -o "$T/el.safetensors" -el no_such_layer >"$T/el.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "no_such_layer" "$T/el.log" && [ ! -e "$T/el.safetensors" ] &&
    ok "-el with an unknown layer: exit 2, named, nothing written" || { bad "-el unknown (exit $rc)"; cat "$T/el.log"; }
sed 's/^yolov4_config {/yolov4_config {\n  bogus_field: 3/' "$T/r.txt" >"$T/typo.txt"
$DEFT yolo_v4 prune -m "$M" --sweep -e "$T/typo.txt" -r "$T/swt" >"$T/swt.log" 2>&1
[ $? -eq 2 ] && grep -q "bogus_field" "$T/swt.log" && ! grep -q "^threshold" "$T/swt.log" &&
    ok "--sweep -e with a spec typo: exit 2 naming the field, no table" || { bad "--sweep with a bad spec"; cat "$T/swt.log"; }
$DEFT yolo_v4 prune -m "$M" >"$T/o.log" 2>&1
[ $? -eq 2 ] && grep -q "\-o OUT is required" "$T/o.log" && ok "no -o: exit 2" || { bad "no -o"; cat "$T/o.log"; }
finish
