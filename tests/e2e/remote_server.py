#!/usr/bin/python3
"""HTTP(S) test server for the URL source tests (standard library only).

Serves DIR with single-range Range support, ETag and Last-Modified, and
If-Range (a Range with an If-Range that names neither the current strong
ETag nor the current Last-Modified is ignored: 200 and the whole file),
over keep-alive HTTP/1.1, optionally TLS. It binds 127.0.0.1 on a free
port and writes the port to --port-file once it listens. Every request is
logged to --log as one line:

    METHOD PATH RANGE STATUS SENT IFRANGE

(RANGE is the Range header or "-", SENT the body bytes written to the
socket, IFRANGE the If-Range header with blanks as "_", or "-"), so a test
can count what crossed the network.

Faults are chosen per request by a path prefix, so one server serves every
case; state ("once") is kept per prefix, so give each case its own ID:

    /_f/FAULTS/ID/PATH      FAULTS is a comma-separated list of
      drop=N        the first GET that reaches byte N of the file stops
                    there and closes the connection
      stall=N       the same, but the connection goes silent
      err500        the first request gets 500 Internal Server Error
      err500always  every request gets 500
      norange       Range always ignored (200 and the whole file)
      noresume      Range ignored once the drop fault has fired
      change        after the first GET the file "changes": other
                    content (bytes inverted), ETag and Last-Modified
      dropevery=N   like drop, but every GET that reaches byte N (a
                    resume from N gets its headers and no byte)
      stallevery=N  like stall, but every GET that reaches byte N
      cut=K         every GET body stops after K bytes; connection closed
      short=K       every GET body lacks its last K bytes (fewer than its
                    Content-Length); connection closed
      extra=K       every GET body is followed by K bytes more than its
                    Content-Length ("X"s); connection kept open
      stallhead     every request is read and never answered (the
                    connection stays silent for 60 s)
      redirloop     every request is redirected (302) to itself
      shiftrange=K  a Range request from byte S > 0 is answered with the
                    bytes from S-K (and a Content-Range that says so)
      noetag        no ETag header
      nolm          no Last-Modified header (with noetag: no validator
                    at all, so only the size tells versions apart)
      weak          the ETag is weak (W/"...")
      stallcut=K    every GET body goes silent after K bytes (60 s)
    /tok/PATH       403 unless the query has token=x
    /to/SCHEME/PORT/PATH
                    302 to SCHEME://127.0.0.1:PORT/PATH (the query kept),
                    SCHEME as given: a redirect to another server
    /auth/PATH      401 unless Basic credentials user:secret

With --mute the server is no HTTP server at all: it accepts TCP
connections and never sends or reads a byte (a TLS handshake or a
request that hangs).
"""
import argparse
import base64
import email.utils
import http.server
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

STATE = {}
STATE_LOCK = threading.Lock()
LOG_LOCK = threading.Lock()


def take_once(key):
    """True the first time key is seen."""
    with STATE_LOCK:
        seen = STATE.get(key, 0)
        STATE[key] = seen + 1
        return seen == 0


def count(key):
    """How many times key was seen before (and count this one)."""
    with STATE_LOCK:
        n = STATE.get(key, 0)
        STATE[key] = n + 1
        return n


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bmaptk-test/1"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status, sent):
        with LOG_LOCK:
            with open(self.server.log_path, "a") as f:
                f.write("%s %s %s %d %d %s\n" % (
                    self.command, self.path,
                    (self.headers.get("Range") or "-").replace(" ", ""),
                    status, sent,
                    (self.headers.get("If-Range") or "-").replace(" ", "_")))

    def plain(self, status, text, extra=()):
        body = (text + "\n").encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(status, len(body))

    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        self.serve()

    def parse_faults(self, path):
        faults = {}
        if path.startswith("/_f/"):
            parts = path.split("/", 4)
            if len(parts) < 5:
                return None, None, path
            for f in parts[2].split(","):
                name, _, value = f.partition("=")
                faults[name] = int(value) if value else 1
            return faults, parts[2] + "/" + parts[3], "/" + parts[4]
        return faults, None, path

    def serve(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        faults, key, path = self.parse_faults(path)
        if faults is None:
            return self.plain(400, "bad fault path")
        if "stallhead" in faults:
            return self.stall_silently()
        if "redirloop" in faults:
            return self.plain(302, "again", [("Location", self.path)])
        if path.startswith("/to/"):
            parts = path.split("/", 4)
            if len(parts) < 5:
                return self.plain(400, "bad redirect path")
            target = "%s://127.0.0.1:%s/%s" % (parts[2], parts[3], parts[4])
            if url.query:
                target += "?" + url.query
            return self.plain(302, "moved", [("Location", target)])
        if path.startswith("/tok/"):
            if "token=x" not in url.query.split("&"):
                return self.plain(403, "no token")
        if path.startswith("/auth/"):
            want = "Basic " + base64.b64encode(b"user:secret").decode()
            if self.headers.get("Authorization") != want:
                return self.plain(401, "who are you",
                                  [("WWW-Authenticate", 'Basic realm="t"')])
        if "err500always" in faults or (
                "err500" in faults and take_once(key + "#500")):
            return self.plain(500, "injected failure")
        full = os.path.realpath(os.path.join(self.server.root,
                                             path.lstrip("/")))
        if not full.startswith(self.server.root + os.sep) or \
                not os.path.isfile(full):
            return self.plain(404, "no such file")
        self.send_file(full, faults, key)

    def stall_silently(self):
        self.log_line(0, 0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
        self.close_connection = True

    def send_file(self, full, faults, key):
        st = os.stat(full)
        size = st.st_size
        mtime = int(st.st_mtime)
        changed = False
        n_get = 0
        if self.command == "GET" and key is not None:
            n_get = count(key + "#get")
        if "change" in faults and n_get > 0:
            changed = True
            mtime += 3600
        etag = '"%x-%x%s"' % (size, mtime, "-v2" if changed else "")
        if "weak" in faults:
            etag = "W/" + etag
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if "norange" in faults or ("noresume" in faults and
                                   STATE.get(key + "#drop")):
            rng = None
        if_range = self.headers.get("If-Range")
        if rng and if_range is not None:
            if if_range.startswith('"') or if_range.startswith("W/"):
                # RFC 9110 13.1.5: a strong comparison
                same = "noetag" not in faults and \
                    not etag.startswith("W/") and if_range == etag
            else:
                same = "nolm" not in faults and if_range == last_modified
            if not same:
                rng = None
        if rng:
            spec = rng.strip()
            if not spec.startswith("bytes=") or "," in spec:
                return self.plain(416, "one range only")
            a, _, b = spec[6:].partition("-")
            if a == "":
                start = max(0, size - int(b))
            else:
                start = int(a)
                if b:
                    end = min(int(b), size - 1)
            if start >= size or start > end:
                return self.plain(416, "not satisfiable",
                                  [("Content-Range", "bytes */%d" % size)])
            status = 206
            if start > 0 and "shiftrange" in faults:
                start = max(0, start - faults["shiftrange"])
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if "noetag" not in faults:
            self.send_header("ETag", etag)
        if "nolm" not in faults:
            self.send_header("Last-Modified", last_modified)
        if status == 206:
            self.send_header("Content-Range",
                             "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if self.command == "HEAD":
            return self.log_line(status, 0)
        limit = None
        mode = None
        for m in ("drop", "stall"):
            at = faults.get(m)
            if at is not None and start <= at <= end and \
                    take_once(key + "#" + m):
                limit, mode = at - start, m
        for m, like in (("dropevery", "drop"), ("stallevery", "stall")):
            at = faults.get(m)
            if limit is None and at is not None and start <= at <= end:
                limit, mode = at - start, like
        if limit is None and "cut" in faults:
            limit, mode = min(faults["cut"], length), "drop"
        if limit is None and "stallcut" in faults and \
                faults["stallcut"] < length:
            limit, mode = faults["stallcut"], "stall"
        if limit is None and "short" in faults:
            limit, mode = max(0, length - faults["short"]), "drop"
        sent = 0
        try:
            with open(full, "rb") as f:
                f.seek(start)
                left = length
                while left > 0:
                    n = min(left, 256 * 1024)
                    if limit is not None:
                        n = min(n, limit - sent)
                        if n == 0:
                            break
                    data = f.read(n)
                    if changed:
                        data = bytes(x ^ 0xFF for x in data)
                    self.wfile.write(data)
                    sent += len(data)
                    left -= len(data)
                if "extra" in faults and mode is None:
                    self.wfile.write(b"X" * faults["extra"])
                    sent += faults["extra"]
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
            return self.log_line(status, sent)
        self.log_line(status, sent)
        if mode == "stall":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.1)
        if mode is not None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def mute(args):
    """Accept TCP connections and hold them, silent, until killed."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    open(args.log, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(tmp, args.port_file)
    held = []
    try:
        while True:
            conn, _ = srv.accept()
            held.append(conn)
            with LOG_LOCK:
                with open(args.log, "a") as f:
                    f.write("ACCEPT - - 0 0\n")
    except KeyboardInterrupt:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--mute", action="store_true",
                    help="accept connections, never answer")
    args = ap.parse_args()
    if args.mute:
        return mute(args)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.root = os.path.realpath(args.dir)
    srv.log_path = args.log
    open(args.log, "a").close()
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
