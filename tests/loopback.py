"""A file server on the loopback address (port 0) with injectable faults, for the fetcher's tests.

It serves a folder (``../shared/data``) under the mirror layout; ``faults`` maps a URL path to one of
``"corrupt"`` (other bytes), ``"drop"`` (headers and half the body, then the connection closes), ``"drop_once"``
(only the first request drops), ``"404"``.  Every GET is logged in ``requests``.  ``extra`` serves in-memory bytes
at given URL paths.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "cevnsfit-test"

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        path = unquote(urlsplit(self.path).path)
        with srv.lock:
            srv.requests.append(path)
            fault = srv.faults.get(path)
            if fault == "drop_once":
                srv.faults.pop(path)
                fault = "drop"
        if fault == "404":
            self.send_error(404)
            return
        if path in srv.extra:
            body = srv.extra[path]
        else:
            file = srv.root / path.lstrip("/")
            if not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
        if fault == "corrupt":
            body = body[:-1] + bytes([(body[-1] + 1) % 256]) if body else b"x"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "drop":
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


class LoopbackServer:
    def __init__(self, root: Path, faults: dict | None = None, extra: dict | None = None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.httpd.root = Path(root)
        self.httpd.faults = dict(faults or {})
        self.httpd.extra = dict(extra or {})
        self.httpd.requests = []
        self.httpd.lock = threading.Lock()
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    @property
    def faults(self) -> dict:
        return self.httpd.faults

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
