"""A local HTTP server for the download tests (127.0.0.1 only).

http_server.py DIR PORTFILE [--cut N]
Serves DIR with Range support, writes its port to PORTFILE and runs until
killed. With --cut N the first GET of each file sends N bytes of the body and
drops the connection (an interrupted download, to be resumed)."""
import http.server, os, re, sys, threading

root, portfile = sys.argv[1], sys.argv[2]
cut = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--cut" else None
served = set()
lock = threading.Lock()

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        path = os.path.join(root, os.path.basename(self.path.split("?")[0]))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        start, code = 0, 200
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            code = 206
        body = data[start:]
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        with lock:
            first = path not in served
            served.add(path)
        if cut is not None and first:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
