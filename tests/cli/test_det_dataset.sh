#!/bin/sh
# deft detection dataset_convert / dataset_validate on the real sets in
# ../shared/data (BCCD: KITTI, VOC XML and COCO JSON of the same images;
# raccoon likewise): the three formats read to identical boxes under TAO's
# rules, KITTI -> COCO -> VOC -> KITTI is exact, splits select the listed
# images, per-class box counts match an independent reading in Python
# (xml.etree / json / plain text), and bad input exits 2 with file:line.
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
DATA=$SHARED/data
[ -d "$DATA/bccd" ] && [ -d "$DATA/raccoon" ] || { echo "SKIP: ../shared/data/{bccd,raccoon} not present"; exit 77; }
PY=/usr/bin/python3
conv() { "$DEFT" detection dataset_convert "$@" > "$T/conv.log" 2>&1; }

# $1 name, $2 image dir, $3 KITTI dir, $4 VOC dir, $5 COCO file, $6 split list
check_set() {
    name=$1 img=$2 kit=$3 voc=$4 coco=$5 split=$6
    # the same boxes from the three formats (TAO's rules: zero-area VOC boxes dropped)
    for f in kitti:$kit voc:$voc coco:$coco; do
        fmt=${f%%:*} src=${f#*:}
        conv -i "$src" --from $fmt --images "$img" -o "$T/$name/rules_$fmt" --to kitti --tao_rules ||
            { bad "$name: read $fmt: $(cat "$T/conv.log")"; return; }
    done
    diff -r "$T/$name/rules_kitti" "$T/$name/rules_voc" > /dev/null && ok "$name: VOC reads to the KITTI boxes" ||
        bad "$name: VOC and KITTI differ"
    diff -r "$T/$name/rules_kitti" "$T/$name/rules_coco" > /dev/null && ok "$name: COCO reads to the KITTI boxes" ||
        bad "$name: COCO and KITTI differ"
    # exact round trip KITTI -> COCO -> VOC -> KITTI (raw: names and boxes as written)
    conv -i "$kit" --from kitti --images "$img" -o "$T/$name/rt.json" --to coco &&
        conv -i "$T/$name/rt.json" --from coco -o "$T/$name/rt_voc" --to voc &&
        conv -i "$T/$name/rt_voc" --from voc -o "$T/$name/rt_kitti" --to kitti &&
        conv -i "$kit" --from kitti -o "$T/$name/rt_kitti0" --to kitti ||
        { bad "$name: round trip: $(cat "$T/conv.log")"; return; }
    diff -r "$T/$name/rt_kitti0" "$T/$name/rt_kitti" > /dev/null && ok "$name: KITTI -> COCO -> VOC -> KITTI exact" ||
        bad "$name: round trip differs"
    # the converted boxes equal the original KITTI numbers (Python compares the values)
    $PY - "$kit" "$T/$name/rt_kitti" <<'EOF' && ok "$name: round-tripped values equal the original labels" || bad "$name: values differ"
import os, sys
a, b = sys.argv[1], sys.argv[2]
def read(d):
    out = {}
    for f in sorted(os.listdir(d)):
        rows = []
        for line in open(os.path.join(d, f)):
            t = line.split()
            if t: rows.append((t[0], [float(x) for x in t[4:8]], float(t[2]) != 0))
        out[f] = rows
    return out
sys.exit(0 if read(a) == read(b) else 1)
EOF
    # a split selects exactly the listed images
    n=$(grep -c . "$split")
    conv -i "$voc" --from voc --images "$img" --split "$split" -o "$T/$name/split" --to kitti &&
        [ "$(ls "$T/$name/split" | wc -l)" -eq "$n" ] && ok "$name: --split $(basename "$split") gives its $n images" ||
        bad "$name: split: $(cat "$T/conv.log")"
    # per-class counts of dataset_validate against Python's own reading of each format
    for f in kitti:$kit voc:$voc coco:$coco; do
        fmt=${f%%:*} src=${f#*:}
        "$DEFT" detection dataset_validate -d "$src" -i "$img" -o "$T/$name/val_$fmt.json" > "$T/val.log" 2>&1
        rc=$?
        [ $rc -le 1 ] || { bad "$name: validate $fmt exit $rc: $(tail -3 "$T/val.log")"; continue; }
        $PY - "$fmt" "$src" "$T/$name/val_$fmt.json" <<'EOF' && ok "$name: $fmt per-class counts match Python" || bad "$name: $fmt counts differ"
import collections, json, os, sys
import xml.etree.ElementTree as ET
fmt, src, rep = sys.argv[1:4]
c = collections.Counter()
if fmt == "kitti":
    for f in os.listdir(src):
        for line in open(os.path.join(src, f)):
            if line.split(): c[line.split()[0]] += 1
elif fmt == "voc":
    for f in os.listdir(src):
        for o in ET.parse(os.path.join(src, f)).getroot().iter("object"):
            c[o.find("name").text.strip()] += 1
else:
    d = json.load(open(src))
    names = {k["id"]: k["name"] for k in d["categories"]}
    for a in d["annotations"]: c[names[a["category_id"]]] += 1
got = {k: v["boxes"] for k, v in json.load(open(rep))["classes"].items()}
if got != dict(c): print("deft", got, "python", dict(c)); sys.exit(1)
EOF
    done
}

check_set bccd "$DATA/bccd/JPEGImages" "$DATA/bccd/labels_kitti" "$DATA/bccd/Annotations" \
    "$DATA/bccd/annotations_coco.json" "$DATA/bccd/ImageSets/Main/val.txt"
check_set raccoon "$DATA/raccoon/images" "$DATA/raccoon/labels_kitti" "$DATA/raccoon/annotations" \
    "$DATA/raccoon/annotations_coco.json" "$DATA/raccoon/train.txt"

# validate BCCD's VOC XML: its two zero-area boxes, at file:line, exit 1
"$DEFT" detection dataset_validate -d "$DATA/bccd/Annotations" > "$T/v.log" 2>&1
rc=$?
cat "$T/v.log"
zero=$($PY - "$DATA/bccd/Annotations" <<'EOF'
import os, sys
import xml.etree.ElementTree as ET
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    for o in ET.parse(os.path.join(d, f)).getroot().iter("object"):
        b = [float(o.find("bndbox/" + k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
        if b[2] <= b[0] or b[3] <= b[1]: print(f)
EOF
)
for f in $zero; do
    grep -q "error: .*/$f:[0-9]*: .*zero area \[zero_area\]" "$T/v.log" && ok "validate names $f:line (zero area)" ||
        bad "validate misses the zero-area box of $f"
done
[ -n "$zero" ] && [ $rc -eq 1 ] && ok "validate exits 1 with findings" || bad "validate exit $rc"
"$DEFT" detection dataset_validate -d "$DATA/raccoon/labels_kitti" -i "$DATA/raccoon/images" > /dev/null 2>&1 &&
    ok "validate exits 0 on a clean set" || bad "validate on raccoon KITTI"

# bad input: exit 2 and file:line
mkdir -p "$T/bad/lab"
printf 'car 0 0 0 1 2 30 40 0 0 0 0 0 0 0\ncar 0 0 0 1 2\n' > "$T/bad/lab/x.txt"
conv -i "$T/bad/lab" --from kitti -o "$T/bad/out" --to kitti
rc=$?
[ $rc -eq 2 ] && grep -q "x.txt:2:" "$T/conv.log" && ok "malformed line: exit 2, file:line" ||
    bad "malformed line: exit $rc: $(cat "$T/conv.log")"
conv -i "$T/bad/lab" --from kitti -o "$T/bad/out" --to kitti --skip_bad_lines &&
    grep -q "1 malformed lines skipped" "$T/conv.log" && ok "--skip_bad_lines skips and counts" ||
    bad "--skip_bad_lines: $(cat "$T/conv.log")"
conv -i "$T/nonexistent" --from kitti -o "$T/bad/o2" --to coco; rc=$?
[ $rc -eq 2 ] && ok "missing label directory: exit 2" || bad "missing dir: exit $rc"
conv -i "$T/bad/lab" --from yolo -o "$T/bad/o3" --to coco; rc=$?
[ $rc -eq 2 ] && grep -q "kitti, coco or voc" "$T/conv.log" && ok "unknown format: exit 2" || bad "unknown format: exit $rc"
conv -i "$T/bad/lab" --from kitti -o "$T/bad/o4" --to coco --skip_bad_lines; rc=$?
[ $rc -eq 2 ] && grep -q "image directory" "$T/conv.log" && ok "KITTI -> COCO without images: exit 2 with a hint" ||
    bad "no images: exit $rc: $(cat "$T/conv.log")"
"$DEFT" detection dataset_validate > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "validate without -d: exit 2" || bad "validate usage: exit $rc"
"$DEFT" detection --help | grep -q "exit status" && ok "--help documents the exit status" || bad "--help"
finish
