#!/usr/bin/python3
"""Rewrite the "engine" metadata entry of an engine file (tests of hostile engines).
Usage: engine_meta_edit.py SRC DST 'PYTHON' -- PYTHON edits the dict `e` in place."""
import json, struct, sys
src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
e = json.loads(h['__metadata__']['engine'])
exec(edit)
h['__metadata__']['engine'] = json.dumps(e)
hj = json.dumps(h).encode(); hj += b' ' * (-len(hj) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(hj)) + hj + raw[8 + n:])
