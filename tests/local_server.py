"""A local HTTP server for download tests: 127.0.0.1 only, and able to misbehave as real servers do."""
import http.server
import re
import socket
import threading

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.mode`` says how: "normal" (honours Range), "cut" (stops halfway
    through the body and drops the connection), "ignore-range" (always the whole file), "corrupt" (one byte
    changed), "wrong-range" (answers a Range request with a 206 of the whole file), "cut-chunked" (sends the
    whole file as one chunk of HTTP/1.1 chunked encoding, stops halfway through it and drops the connection)."""

    def do_GET(self):
        server = self.server
        body = server.files.get(self.path)
        server.requests.append((self.path, self.headers.get("Range")))
        if body is None:
            self.send_error(404)
            return
        if server.mode == "cut-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(f"{len(body):x}\r\n".encode() + body[:len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if server.mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.mode != "ignore-range":
            start = 0 if server.mode == "wrong-range" else int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.mode == "cut":
            body = body[:len(body) // 2]
        self.wfile.write(body)
        server.bytes_sent += len(body)
        if server.mode == "cut":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local server for this test only: 127.0.0.1, a free port, shut down after the test (or after 60 s)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.mode, httpd.requests, httpd.bytes_sent = {}, "normal", [], 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(60, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    yield httpd
    watchdog.cancel()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
