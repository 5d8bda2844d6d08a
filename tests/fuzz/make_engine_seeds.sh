#!/bin/sh
# make_engine_seeds.sh OUT [DEFT]: seeds for fuzz_engine, written by deft
# itself: small ONNX graphs (make_onnx_seeds.py) converted into engines
# (`deft model convert`), and variants of one: a newer engine_format, a
# malformed entry, bad extra outputs, a truncated file. tests/fuzz/corpus/engine holds them.
set -eu
OUT=${1:?usage: make_engine_seeds.sh OUT [DEFT]}
DEFT=${2:-build/deft}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
$PY "$ROOT/tests/fuzz/make_onnx_seeds.py" "$TMP" >/dev/null
for f in "$TMP"/*.onnx; do
    n=$(basename "$f" .onnx)
    "$DEFT" model convert -m "$f" -o "$OUT/$n.engine" >/dev/null 2>&1 || rm -f "$OUT/$n.engine"
done
first=$(ls "$OUT"/*.engine | head -1)
$PY - "$first" "$OUT" <<'PY'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
def write(name, edit):
    hh = json.loads(json.dumps(h))
    e = json.loads(hh['__metadata__']['engine'])
    edit(e)
    hh['__metadata__']['engine'] = json.dumps(e) if isinstance(e, dict) else e
    hj = json.dumps(hh).encode(); hj += b' ' * (-len(hj) % 8)
    open(f"{out}/{name}", 'wb').write(struct.pack('<Q', len(hj)) + hj + raw[8 + n:])
write("newer.engine", lambda e: e.update(engine_format=3))
write("more_dup.engine", lambda e: e.update(engine_format=2, more_outputs=[{"name": e['output'], "shape": e['output_shape']}]))
write("more_input.engine", lambda e: e.update(engine_format=2, more_outputs=[{"name": e['input'], "shape": e['input_shape']}]))
write("more_bad.engine", lambda e: e.update(engine_format=2, more_outputs=[{"name": 7}]))
write("batch0.engine", lambda e: e.update(batch=0))
write("shape.engine", lambda e: e['input_shape'].__setitem__(0, 1 << 30))
write("noout.engine", lambda e: e.update(output="nothing"))
# int8: act_scales (the input's scale; a convolution reading another value lacks one)
write("int8.engine", lambda e: e.update(precision="int8", act_scales={e['input']: 0.02}))
write("int8neg.engine", lambda e: e.update(precision="int8", act_scales={e['input']: -1}))
open(f"{out}/truncated.engine", 'wb').write(raw[:len(raw) - 16])
PY
