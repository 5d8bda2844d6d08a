#!/bin/sh
# `deft model download` against a local HTTP server on 127.0.0.1: a URL with
# --sha256, an interrupted download resumed by the next run, a catalogue name
# through $DEFT_MODEL_MIRROR with a file whose hash does not match its name,
# an already-present file, and a server that is not there (offline).
. "${DEFT_SOURCE_DIR:-.}/tests/harness/sh_lib.sh"
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT
serve() { # DIR PORTFILE [--cut N] -> sets PORT
    /usr/bin/python3 "$SRC/tests/ref/http_server.py" "$@" &
    PIDS="$PIDS $!"
    for i in $(seq 100); do [ -s "$2" ] && break; sleep 0.1; done
    PORT=$(cat "$2")
}
mkdir -p "$T/www" "$T/out" "$T/cache"
head -c 3000000 /dev/urandom >"$T/www/weights.pth"
SHA=$(sha256sum "$T/www/weights.pth" | cut -c1-64)
serve "$T/www" "$T/port1"
PORT1=$PORT
$DEFT model download "http://127.0.0.1:$PORT/weights.pth" --sha256 "$SHA" -o "$T/out" >"$T/log" 2>&1 &&
    cmp -s "$T/out/weights.pth" "$T/www/weights.pth" && [ ! -e "$T/out/weights.pth.part" ] &&
    ok "URL download, SHA-256 verified" || { bad "URL download"; cat "$T/log"; }
$DEFT model download "http://127.0.0.1:$PORT/weights.pth" --sha256 "$SHA" -o "$T/out" >"$T/log" 2>&1 &&
    grep -q "already downloaded" "$T/log" && ok "a verified file is not downloaded again" ||
    { bad "second download"; cat "$T/log"; }
# interrupted after 1 MB: the first run fails keeping the .part, the second resumes
serve "$T/www" "$T/port2" --cut 1000000
$DEFT model download "http://127.0.0.1:$PORT/weights.pth" --sha256 "$SHA" -o "$T/cache" >"$T/log" 2>&1
rc=$?
part=$(stat -c %s "$T/cache/weights.pth.part" 2>/dev/null || echo 0)
[ $rc -ne 0 ] && [ "$part" -eq 1000000 ] && [ ! -e "$T/cache/weights.pth" ] &&
    ok "interrupted download fails, keeps 1000000 bytes in .part" ||
    { bad "interrupted download (exit $rc, part $part)"; cat "$T/log"; }
$DEFT model download "http://127.0.0.1:$PORT/weights.pth" --sha256 "$SHA" -o "$T/cache" >"$T/log" 2>&1 &&
    cmp -s "$T/cache/weights.pth" "$T/www/weights.pth" && ok "resumed download completes, verified" ||
    { bad "resume"; cat "$T/log"; }
# a catalogue name through a mirror: the file does not match the hash in its name
cp "$T/www/weights.pth" "$T/www/squeezenet1_0-b66bff10.pth"
DEFT_MODEL_MIRROR="http://127.0.0.1:$PORT1/" DEFT_CACHE_DIR="$T/mirror" \
    $DEFT model download squeezenet1_0 >"$T/log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "checksum mismatch" "$T/log" && [ ! -e "$T/mirror/squeezenet1_0-b66bff10.pth" ] &&
    [ ! -e "$T/mirror/squeezenet1_0-b66bff10.pth.part" ] &&
    ok "catalogue checksum mismatch: exit 2, nothing kept" || { bad "mismatch (exit $rc)"; cat "$T/log"; }
# a wrong --sha256 for a URL
$DEFT model download "http://127.0.0.1:$PORT/weights.pth" --sha256 00000000 -o "$T/bad" >"$T/log" 2>&1
rc=$?
[ $rc -eq 2 ] && [ ! -e "$T/bad/weights.pth" ] && ok "wrong --sha256: exit 2" || { bad "wrong sha (exit $rc)"; cat "$T/log"; }
# nothing listening: a clear error, exit 1, no file left
kill $PIDS 2>/dev/null; wait 2>/dev/null
$DEFT model download "http://127.0.0.1:$PORT/weights.pth" -o "$T/off" >"$T/log" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "cannot download" "$T/log" && grep -q "offline" "$T/log" &&
    [ ! -e "$T/off/weights.pth.part" ] && ok "no server: clear error, exit 1" || { bad "offline (exit $rc)"; cat "$T/log"; }
$DEFT model download not_a_model >"$T/log" 2>&1
[ $? -eq 2 ] && grep -q "deft model list" "$T/log" && ok "unknown name: exit 2 pointing at the list" ||
    { bad "unknown name"; cat "$T/log"; }
finish
