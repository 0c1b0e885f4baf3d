"""An HTTP server on 127.0.0.1 that download tests start themselves and reach through POLYP_RAY_MIRROR
(nothing leaves this machine), and a mirror nothing listens on; KERAS_HOME and POLYP_RAY_CACHE point
at temporary folders in every test that uses them. tests/conftest.py makes the fixtures everyone's."""

from __future__ import annotations

import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class Server:
    """Serves ``files`` (URL path -> bytes); counts requests; paths in ``truncate`` send half the body
    under the full Content-Length and close the connection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = urllib.parse.urlsplit(self.path).path
                server.hits[path] += 1
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if path in server.truncate else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def serve(self, origin: str, body: bytes) -> str:
        """Serve ``body`` where the mirror maps the public address ``origin``; its URL path."""
        path = urllib.parse.urlsplit(origin).path
        self.files[path] = body
        return path


def private_homes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mirror: str) -> str:
    monkeypatch.setenv("POLYP_RAY_MIRROR", mirror)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("POLYP_RAY_CACHE", str(tmp_path / "cache"))
    return mirror


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    private_homes(monkeypatch, tmp_path, srv.url)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=10)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A mirror at a port nothing listens on (bound, then closed): every download is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return private_homes(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
