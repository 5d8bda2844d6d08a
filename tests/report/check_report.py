#!/usr/bin/python3
"""Independent checks of the files src/report writes (used by test_report.c).

    check_report.py events <file> <expected.txt>   expected: "tag<TAB>step<TAB>value" lines
    check_report.py status <status.json> <n_lines>
    check_report.py csv <metrics.csv> <n_rows>
    check_report.py svg <file.svg>
    check_report.py png <file.png> <width|0> <height|0> <min_colors>

Only the standard library: CRC-32C, the protobuf wire format and PNG
decoding (zlib + filters) are implemented here from the specifications,
not shared with the C code. Exit status 0 = all good; a message otherwise.
"""
import csv
import json
import math
import struct
import sys
import xml.etree.ElementTree as ET
import zlib


def fail(msg):
    print("check_report: FAIL: " + msg)
    sys.exit(1)


# ---- CRC-32C (Castagnoli), bitwise-table, reflected poly 0x82F63B78 ----------
_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283
assert crc32c(bytes(32)) == 0x8A9136AA


# ---- protobuf wire format -----------------------------------------------------
def varint(buf, i):
    x = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        x |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return x, i
        if shift > 70:
            raise ValueError("varint too long")


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        elif wt == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            if len(v) != n:
                raise ValueError("truncated bytes field")
            i += n
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def decode_event(data):
    ev = {"wall_time": None, "step": 0, "file_version": None, "values": []}
    for f, wt, v in fields(data):
        if f == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif f == 2 and wt == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif f == 3 and wt == 2:
            ev["file_version"] = v.decode()
        elif f == 5 and wt == 2:
            for f2, wt2, val in fields(v):
                if f2 != 1 or wt2 != 2:
                    continue
                tag, simple, image = None, None, None
                for f3, wt3, x in fields(val):
                    if f3 == 1 and wt3 == 2:
                        tag = x.decode()
                    elif f3 == 2 and wt3 == 5:
                        simple = struct.unpack("<f", x)[0]
                    elif f3 == 4 and wt3 == 2:
                        image = {k: x2 for k, _, x2 in fields(x)}
                ev["values"].append((tag, simple, image))
    return ev


def read_records(path):
    data = open(path, "rb").read()
    i, recs = 0, []
    while i < len(data):
        if len(data) - i < 12:
            fail("%s: trailing %d bytes (torn record)" % (path, len(data) - i))
        hdr = data[i:i + 8]
        (n,) = struct.unpack("<Q", hdr)
        (hc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hc != masked(crc32c(hdr)):
            fail("%s: record %d: length CRC" % (path, len(recs)))
        body = data[i + 12:i + 12 + n]
        if len(body) != n or len(data) < i + 16 + n:
            fail("%s: record %d truncated" % (path, len(recs)))
        (dc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if dc != masked(crc32c(body)):
            fail("%s: record %d: data CRC" % (path, len(recs)))
        recs.append(body)
        i += 16 + n
    return recs


def check_events(path, expected_path):
    recs = read_records(path)
    if not recs:
        fail("no records")
    evs = [decode_event(r) for r in recs]
    if evs[0]["file_version"] != "brain.Event:2":
        fail("first event file_version = %r" % evs[0]["file_version"])
    if not evs[0]["wall_time"] or evs[0]["wall_time"] < 1e9:
        fail("first event wall_time %r" % evs[0]["wall_time"])
    got = []
    n_images = 0
    for e in evs[1:]:
        if e["wall_time"] is None or e["wall_time"] < 1e9:
            fail("event without a plausible wall_time")
        for tag, simple, image in e["values"]:
            if image is not None:
                n_images += 1
                png = image.get(4, b"")
                if png[:8] != b"\x89PNG\r\n\x1a\n":
                    fail("image summary is not a PNG")
            if simple is not None:
                got.append((tag, e["step"], simple))
    want = []
    for line in open(expected_path):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("#images\t"):
            if n_images != int(line.split("\t")[1]):
                fail("images: got %d want %s" % (n_images, line))
            continue
        tag, step, val = line.split("\t")
        want.append((tag, int(step), struct.unpack("<f", struct.pack("<f", float(val)))[0]))
    if len(got) != len(want):
        fail("got %d scalars, want %d" % (len(got), len(want)))
    for g, w in zip(got, want):
        same = g[:2] == w[:2] and (g[2] == w[2] or (math.isnan(g[2]) and math.isnan(w[2])))
        if not same:
            fail("scalar %r != expected %r" % (g, w))
    print("events: %d records, %d scalars, %d images OK (python crc32c + protobuf decode)"
          % (len(recs), len(got), n_images))

    # TensorBoard's own loader, when some python on this machine has it.
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except Exception:
        print("events: tensorboard not importable: event_accumulator check skipped")
        return
    acc = event_accumulator.EventAccumulator(path, size_guidance={"scalars": 0})
    acc.Reload()
    n = 0
    for tag in acc.Tags()["scalars"]:
        for s in acc.Scalars(tag):
            ok = any(w[0] == tag and w[1] == s.step and
                     (w[2] == s.value or (math.isnan(w[2]) and math.isnan(s.value))) for w in want)
            if not ok:
                fail("tensorboard read %s step %d = %r, not expected" % (tag, s.step, s.value))
            n += 1
    if n != len(want):
        fail("tensorboard read %d scalars, want %d" % (n, len(want)))
    print("events: tensorboard event_accumulator read %d scalars OK" % n)


def check_status(path, n_lines):
    lines = open(path, encoding="utf-8").read().split("\n")
    if lines[-1] != "":
        fail("status.json does not end with a newline")
    lines = lines[:-1]
    if len(lines) != n_lines:
        fail("status.json: %d lines, want %d" % (len(lines), n_lines))
    prev = None
    for i, ln in enumerate(lines):
        try:
            o = json.loads(ln)
        except ValueError as e:
            fail("status.json line %d: %s: %r" % (i + 1, e, ln))
        for k in ("epoch", "step", "loss", "lr", "time"):
            if k not in o:
                fail("status.json line %d: no %r" % (i + 1, k))
        if not isinstance(o["epoch"], int):
            fail("epoch not an int")
        if "val" in o and not isinstance(o["val"], dict):
            fail("val is not an object")
        if prev is not None and o["epoch"] <= prev:
            fail("epochs not increasing")
        prev = o["epoch"]
    print("status.json: %d lines OK (python json)" % len(lines))


def check_csv(path, n_rows):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        fail("metrics.csv empty")
    hdr = rows[0]
    if hdr[:5] != ["epoch", "step", "loss", "lr", "time"]:
        fail("metrics.csv header %r" % hdr)
    body = rows[1:]
    if len(body) != n_rows:
        fail("metrics.csv: %d rows, want %d" % (len(body), n_rows))
    for r in body:
        if r == hdr or r[0] == "epoch":
            fail("header repeated")
        if len(r) != len(hdr):
            fail("row %r has %d fields, header %d" % (r, len(r), len(hdr)))
        int(r[0])
        for v in r[1:]:
            float(v)
    print("metrics.csv: header + %d rows OK (python csv)" % len(body))


def check_svg(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        fail("%s: not well-formed XML: %s" % (path, e))
    if root.tag != "{http://www.w3.org/2000/svg}svg":
        fail("%s: root is %s" % (path, root.tag))
    n = sum(1 for _ in root.iter())
    print("%s: well-formed SVG, %sx%s, %d elements" % (path, root.get("width"), root.get("height"), n))


def png_decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s: no PNG signature" % path)
    i, idat, ihdr, seen_iend = 8, b"", None, False
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        typ = data[i + 4:i + 8]
        body = data[i + 8:i + 8 + n]
        (crc,) = struct.unpack(">I", data[i + 8 + n:i + 12 + n])
        if crc != zlib.crc32(typ + body) & 0xFFFFFFFF:
            fail("%s: chunk %r CRC" % (path, typ))
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        elif typ == b"IEND":
            seen_iend = True
            break
        i += 12 + n
    if not ihdr or not seen_iend:
        fail("%s: missing IHDR/IEND" % path)
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail("%s: unexpected format depth %d type %d interlace %d" % (path, depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        fail("%s: %d bytes of image data, want %d" % (path, len(raw), h * (stride + 1)))
    out, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = b
            elif ft == 3:
                p = (a + b) >> 1
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                fail("%s: filter type %d" % (path, ft))
            line[x] = (line[x] + p) & 0xFF
        out.append(bytes(line))
        prev = line
    return w, h, bpp, out


def check_png(path, want_w, want_h, min_colors):
    w, h, bpp, rows = png_decode(path)
    if (want_w and w != want_w) or (want_h and h != want_h):
        fail("%s: size %dx%d, want %dx%d" % (path, w, h, want_w, want_h))
    bg = rows[0][:3]
    non_bg, colors = 0, set()
    for r in rows:
        for x in range(0, len(r), bpp):
            px = r[x:x + 3]
            colors.add(px)
            if px != bg:
                non_bg += 1
    if non_bg < 500:
        fail("%s: only %d non-background pixels" % (path, non_bg))
    if len(colors) < min_colors:
        fail("%s: %d distinct colours, want >= %d" % (path, len(colors), min_colors))
    print("%s: PNG %dx%d decodes, %d non-background pixels, %d colours" % (path, w, h, non_bg, len(colors)))
    try:
        import cv2
    except Exception:
        return
    img = cv2.imread(path)
    if img is None or img.shape[0] != h or img.shape[1] != w:
        fail("%s: cv2.imread disagrees" % path)
    print("%s: cv2.imread OK" % path)


def main(a):
    if a[0] == "events":
        check_events(a[1], a[2])
    elif a[0] == "status":
        check_status(a[1], int(a[2]))
    elif a[0] == "csv":
        check_csv(a[1], int(a[2]))
    elif a[0] == "svg":
        check_svg(a[1])
    elif a[0] == "png":
        check_png(a[1], int(a[2]), int(a[3]), int(a[4]))
    else:
        fail("unknown mode %s" % a[0])


if __name__ == "__main__":
    main(sys.argv[1:])
