"""The playground's web server: the standard library's ThreadingHTTPServer, the page's own files and a JSON API.

API (every body is JSON; every error is ``{"error": "...", "field": ...}`` with a 4xx status):

========================================  ==========================================================
``GET  /api/menus``                       the choices of the page's menus (settings.menus)
``POST /api/sessions``                    ``{"settings": {...}}`` (optional) -> a new session's frame
``GET  /api/sessions/<id>``               its settings and the engine's description of its network
``POST /api/sessions/<id>/settings``      ``{"settings": {...}}`` (missing fields kept) -> frame at epoch 0
``POST /api/sessions/<id>/train``         ``{"epochs": n, "seconds": s}`` -> frame after those epochs
``POST /api/sessions/<id>/reset``         -> frame of the same network at epoch 0
``POST /api/sessions/<id>/upload``        ``{"file_name": ..., "text": ...}`` (a CSV) -> frame at epoch 0
``POST /api/sessions/<id>/close``         drops the session
``GET  /api/sessions/<id>/model.npz``     the network, as numnet.save_model writes it
``GET  /api/sessions/<id>/script.py``     a script that rebuilds and trains it (see script.py)
========================================  ==========================================================

Safety: by default the server listens on 127.0.0.1 only and answers only requests addressed to a loopback
name (so a web page elsewhere cannot reach it by DNS rebinding). It serves exactly the files of its static
folder, read once at start (any other path, ``..`` included, is 404). Bodies over MAX_BODY_BYTES get 413
without being read. Sessions are bounded by the SessionStore.
"""

import http
import http.server
import importlib.resources
import json
import re
import socket
import sys
import threading
import traceback
import urllib.parse
import webbrowser

from numnet.backend import one_blas_thread

from .script import SCRIPT_FILE_NAME, session_script
from .session import SessionNotFound, SessionStore, TrainingStopped
from .settings import (
    Settings,
    SettingsError,
    menus,
    parse_empty_request,
    parse_settings_request,
    parse_training_request,
    parse_upload_request,
)

DEFAULT_HOST = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20  # 1 MiB
#: A connection idle this long is closed, so that stalled clients cannot hold threads.
CONNECTION_TIMEOUT_SECONDS = 60
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The page loads only its own files and talks only to this server; nothing can be fetched from elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
SESSION_PATH = re.compile(r"^/api/sessions/(?P<session>[A-Za-z0-9_-]{1,64})(?:/(?P<action>[a-z.]+))?$")


class RequestError(Exception):
    """An HTTP error to send back as ``{"error": message, "field": field}``."""

    def __init__(self, status, message, field=None):
        super().__init__(message)
        self.status = status
        self.field = field


def static_files():
    """Every file of the static folder by the URL path that serves it ("/" is index.html), read once."""
    folder = importlib.resources.files(__package__) / "static"
    files = {f"/static/{entry.name}": entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}
    files["/"] = files["/static/index.html"]
    return files


class PlaygroundServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the session store and the page's files.

    Parameters
    ----------
    address : (host, port)
        Port 0 picks a free port (see ``server_address`` after construction).
    store : SessionStore, optional
    loopback_only : bool, default True
        Answer only requests whose Host header is a loopback name (off when the user chose ``--host``).
    """

    daemon_threads = True  # a request in progress never delays Ctrl-C

    def __init__(self, address, *, store=None, loopback_only=True):
        self.store = SessionStore() if store is None else store
        self.files = static_files()
        self.loopback_only = loopback_only
        super().__init__(address, PlaygroundHandler)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-response is not worth a traceback; anything else is.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            traceback.print_exc(file=sys.stderr)


class PlaygroundServer6(PlaygroundServer):
    """The same server on an IPv6 address."""

    address_family = socket.AF_INET6


class PlaygroundHandler(http.server.BaseHTTPRequestHandler):
    """One connection: routes each request to a method and turns every failure into a JSON error."""

    protocol_version = "HTTP/1.1"  # keep-alive: the page's many small requests reuse one connection
    # Headers and body go out in two writes; with Nagle's algorithm the body would wait for the client's
    # delayed ACK of the headers (40 ms on Linux), which capped the page at about 15 pictures a second.
    disable_nagle_algorithm = True
    server_version = "numnet-playground"
    sys_version = ""
    timeout = CONNECTION_TIMEOUT_SECONDS

    # The standard library answers errors found before the version is read in HTTP/0.9, with no status line;
    # starting from 1.0 gives every answer one (and 0.9 requests, which have no version, are refused below).
    default_request_version = "HTTP/1.0"

    def parse_request(self):
        if not super().parse_request():
            return False
        if len(self.requestline.split()) != 3:
            self.send_error(400, "the request line needs a method, a path and a version (HTTP/1.1)")
            return False
        return True

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def _answer(self, method):
        try:
            self._check_host()
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/api/"):
                self._api(method, path)
            elif method == "GET" and path in self.server.files:
                self._send_file(path)
            else:
                raise RequestError(404, f"no such page: {path[:200]}")
        except RequestError as error:
            self._send_json(error.status, {"error": str(error), "field": error.field})
        except SettingsError as error:
            self._send_json(400, {"error": str(error), "field": error.field})
        except SessionNotFound as error:
            self._send_json(404, {"error": str(error), "field": None})
        except TrainingStopped as error:
            self._send_json(409, {"error": str(error), "field": None})
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as error:  # the server keeps running; the page shows the message
            traceback.print_exc(file=sys.stderr)
            self._send_json(500, {"error": f"internal error ({type(error).__name__}: {error})", "field": None})

    def _check_host(self):
        if not self.server.loopback_only:
            return
        host = urllib.parse.urlsplit("//" + self.headers.get("Host", "")).hostname
        if host not in LOOPBACK_NAMES:
            raise RequestError(403, "this playground answers only requests addressed to 127.0.0.1 or localhost; "
                                    "start it with --host to serve other addresses")

    # ---- the API -------------------------------------------------------------------------------------

    def _api(self, method, path):
        store = self.server.store
        if path == "/api/menus":
            self._require(method, "GET")
            self._send_json(200, menus())
            return
        if path == "/api/sessions":
            self._require(method, "POST")
            settings = parse_settings_request(self._read_json(), Settings())
            session = store.create(settings)
            with session.lock:
                self._send_json(201, session.frame(with_data=True))
            return
        match = SESSION_PATH.match(path)
        if match is None:
            raise RequestError(404, f"no such API path: {path[:200]}")
        action = match.group("action") or "info"
        if action not in SESSION_ACTIONS:
            raise RequestError(404, f"no such session action: {action!r}; the API has {', '.join(SESSION_ACTIONS)}")
        expected_method, run = SESSION_ACTIONS[action]
        self._require(method, expected_method)
        body = self._read_json() if method == "POST" else None
        if action == "close":
            parse_empty_request(body)
            store.close(match.group("session"))
            self._send_json(200, {"closed": True})
            return
        session = store.get(match.group("session"))
        with session.lock:
            run(self, session, body)

    def _require(self, method, expected):
        if method != expected:
            raise RequestError(405, f"use {expected} for this path, not {method}")

    def _info(self, session, body):
        self._send_json(200, {"session": session.id, "settings": session.settings.to_json(),
                              "network": session.description(), "divergence": session.divergence})

    def _settings(self, session, body):
        session.configure(parse_settings_request(body, session.settings))
        self._send_json(200, session.frame(with_data=True))

    def _train(self, session, body):
        epochs, seconds = parse_training_request(body)
        records = session.train(epochs, seconds)
        self._send_json(200, session.frame(records))

    def _reset(self, session, body):
        parse_empty_request(body)
        session.reset()
        self._send_json(200, session.frame(with_data=True))

    def _upload(self, session, body):
        session.use_upload(*parse_upload_request(body))
        self._send_json(200, session.frame(with_data=True))

    def _model(self, session, body):
        self._send(200, session.model_file(), "application/octet-stream",
                   {"Content-Disposition": 'attachment; filename="playground-model.npz"'})

    def _script(self, session, body):
        self._send(200, session_script(session).encode("utf-8"), "text/x-python; charset=utf-8",
                   {"Content-Disposition": f'attachment; filename="{SCRIPT_FILE_NAME}"'})

    # ---- reading and writing -------------------------------------------------------------------------

    def _read_json(self):
        """The request's body parsed as JSON; RequestError for a missing, over-long or malformed one."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise RequestError(411, "send the body with a Content-Length header, not in chunks")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            if self.command == "POST":
                raise RequestError(411, "a POST needs a Content-Length header (and a JSON body)")
            return {}
        if not length_text.strip().isdigit():
            self.close_connection = True
            raise RequestError(400, f"Content-Length must be a whole number of bytes, got {length_text[:40]!r}")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read, so the connection cannot be reused
            raise RequestError(413, f"the body has {length:,} bytes; the playground accepts at most "
                                    f"{MAX_BODY_BYTES:,} (1 MiB)")
        raw = self.rfile.read(length)
        if len(raw) != length:
            self.close_connection = True
            raise RequestError(400, f"the body ended after {len(raw)} of {length} bytes")
        if not raw.strip():
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise RequestError(400, f"the body is not UTF-8 text ({error.reason} at byte {error.start})") from None
        except RecursionError:
            raise RequestError(400, "the body is not valid JSON: it nests too deeply") from None
        except ValueError as error:  # json.JSONDecodeError, or an integer too long to convert
            raise RequestError(400, f"the body is not valid JSON: {error}") from None

    def _send_json(self, status, value):
        # allow_nan=False: a NaN would be invalid JSON for the page; the frames hold finite numbers or null.
        self._send(status, json.dumps(value, allow_nan=False).encode("utf-8"), "application/json")

    def _send_file(self, path):
        suffix = path[path.rfind("."):] if "." in path.rsplit("/", 1)[-1] else ".html"
        self._send(200, self.server.files[path], CONTENT_TYPES.get(suffix, "application/octet-stream"))

    def _send(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        """The standard library's own errors (a malformed request line or header) as JSON, like ours."""
        self.close_connection = True
        text = message or http.HTTPStatus(code).phrase
        try:
            self._send_json(code, {"error": text, "field": None})
        except (ConnectionError, TimeoutError):
            pass

    def log_message(self, format, *args):
        """Quiet: the page makes many requests a second; errors still reach stderr."""


SESSION_ACTIONS = {
    "info": ("GET", PlaygroundHandler._info),
    "settings": ("POST", PlaygroundHandler._settings),
    "train": ("POST", PlaygroundHandler._train),
    "reset": ("POST", PlaygroundHandler._reset),
    "upload": ("POST", PlaygroundHandler._upload),
    "close": ("POST", None),
    "model.npz": ("GET", PlaygroundHandler._model),
    "script.py": ("GET", PlaygroundHandler._script),
}


def create_server(host=DEFAULT_HOST, port=0, *, loopback_only=True, store=None):
    """A PlaygroundServer bound to (host, port), not yet serving; port 0 picks a free one."""
    server_class = PlaygroundServer6 if ":" in host else PlaygroundServer
    return server_class((host, port), store=store, loopback_only=loopback_only)


def server_url(server):
    """The address to open in a browser."""
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(host=None, port=0, *, open_browser=True, out=sys.stdout, err=sys.stderr):
    """Run the playground until Ctrl-C; returns 0.

    Parameters
    ----------
    host : str, optional
        Default 127.0.0.1. A host given explicitly prints a warning that others can reach the server, and
        turns off the loopback-only Host check.
    port : int, default 0
        0 picks a free port.
    open_browser : bool, default True
    out, err : text streams for the address and the warning.
    """
    server = create_server(host or DEFAULT_HOST, port, loopback_only=host is None)
    url = server_url(server)
    if host is not None:
        print(f"warning: --host {host}: anyone who can reach {host} on the network can use this playground "
              "(it has no password); leave --host out to keep it on this machine", file=err, flush=True)
    print(f"numnet playground: {url}  (Ctrl-C stops it)", file=out, flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        with one_blas_thread():  # the playground's networks are small (see numnet.backend.one_blas_thread)
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("numnet playground stopped", file=out, flush=True)
    finally:
        server.server_close()
    return 0
