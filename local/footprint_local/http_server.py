"""The local HTTP server: the tracking API (as API Gateway would run it), the local page, the demo shop.

Requests to the template's routes become API Gateway HTTP API (payload 2.0) events for the real
handler; OPTIONS preflights are answered from the API's CORS configuration, as API Gateway does.
``/_local/`` is the local page and its JSON; ``/demo/`` a tiny shop that sends tracking calls.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from footprint.clock import Clock
from footprint.http_api import error_body
from footprint_local.aws import LOOPBACK
from footprint_local.events import (
    CorsPolicy,
    HttpRequest,
    HttpResponse,
    http_api_event,
    http_response,
    route_key,
    route_parameters,
    route_specificity,
)
from footprint_local.lambdas import HandlerUnavailableError, LambdaFunction
from footprint_local.template import HttpRoute

logger = logging.getLogger(__name__)

# One skip of the stack clock; far more would run it past the dates events and journeys can have.
MAX_ADVANCE = timedelta(days=3660)
# API Gateway's payload limit; a longer body is refused unread.
MAX_BODY_BYTES = 10 * 1024 * 1024
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

PACKAGE_DIR = Path(__file__).resolve().parent
LOCAL_PAGE = PACKAGE_DIR / "static" / "index.html"
DEMO_DIR = PACKAGE_DIR / "demo"


def _json_response(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(
        status=status,
        headers={"content-type": "application/json; charset=utf-8", "cache-control": "no-store"},
        body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
    )


def _error_response(status: int, code: str, reason: str) -> HttpResponse:
    """A refusal of the local server itself, in the JSON error shape of the stack's APIs."""
    return _json_response(status, error_body(code, reason))


def _redirect(location: str) -> HttpResponse:
    return HttpResponse(status=302, headers={"location": location})


def _file_response(path: Path) -> HttpResponse:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type == "application/javascript":
        content_type += "; charset=utf-8"
    return HttpResponse(
        status=200, headers={"content-type": content_type, "cache-control": "no-store"}, body=path.read_bytes()
    )


@dataclass
class LocalApplication:
    """Routes one request; independent of the HTTP plumbing so it is easy to follow."""

    routes: list[HttpRoute]
    functions: Mapping[str, LambdaFunction]
    clock: Clock
    cors: CorsPolicy | None
    state: Callable[[], dict[str, Any]]
    demo_config: Callable[[], dict[str, Any]]
    # Where the `footprint` CLI finds this stack's AWS endpoint and table names.
    stack_info: Callable[[], dict[str, Any]] = dict
    on_clock_moved: Callable[[], None] = lambda: None
    domain_name: str = field(default=LOOPBACK)

    def __post_init__(self) -> None:
        self.routes = sorted(self.routes, key=lambda route: route_specificity(route.method, route.path))

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path
        if path == "/":
            return _redirect("/_local/")
        if path == "/_local" or path.startswith("/_local/"):
            return self._local(request)
        if path == "/demo":
            return _redirect("/demo/")
        if path.startswith("/demo/"):
            return self._demo(path.removeprefix("/demo/") or "index.html")
        if path.startswith("/static/"):
            # The demo shop's own assets at the site's root, where journeys point (icon: /static/icon-192.png).
            return self._demo(path.removeprefix("/static/"))
        return self._api(request)

    # ------------------------------------------------------------------------------ the tracking API

    def _api(self, request: HttpRequest) -> HttpResponse:
        headers = {name.lower(): value for name, value in request.headers}
        origin = headers.get("origin", "")
        if request.method == "OPTIONS" and self.cors is not None and "access-control-request-method" in headers:
            preflight = self.cors.preflight_headers(
                origin, headers["access-control-request-method"], headers.get("access-control-request-headers", "")
            )
            return HttpResponse(status=204, headers=preflight)
        path = request.raw_path
        for route in self.routes:
            parameters = route_parameters(route.method, route.path, request.method, path)
            if parameters is not None:
                response = self._invoke(request, route, parameters)
                break
        else:
            logger.info("no route: %s %s -> 404", request.method, path)
            response = _json_response(404, {"message": "Not Found"})
        if self.cors is not None:
            # API Gateway replaces the integration's CORS headers with its own.
            response.headers = {
                name: value for name, value in response.headers.items() if not name.startswith("access-control-")
            }
            response.headers.update(self.cors.response_headers(origin))
        return response

    def _invoke(self, request: HttpRequest, route: HttpRoute, parameters: dict[str, str]) -> HttpResponse:
        function = self.functions[route.function_logical_id]
        key = route_key(route.method, route.path)
        event = http_api_event(request, key, parameters, now=self.clock.now(), domain_name=self.domain_name)
        started = time.monotonic()
        try:
            invocation = function.invoke(event)
        except HandlerUnavailableError as error:
            logger.warning("%s %s -> 500: %s", request.method, request.raw_path, error)
            return _json_response(500, {"message": "Internal Server Error"})
        elapsed_ms = (time.monotonic() - started) * 1000
        if invocation.failed:
            logger.warning("%s %s -> 500 (%s failed: %s)", request.method, request.raw_path, key, invocation.error)
            return _json_response(500, {"message": "Internal Server Error"})
        response = http_response(invocation.payload)
        summary = _summarise_tracking_body(request.body, request.raw_path)
        if 200 <= response.status < 300:
            logger.info(
                "event accepted: %s %s -> %d in %.0f ms [%s]",
                request.method,
                request.raw_path,
                response.status,
                elapsed_ms,
                summary,
            )
        else:
            logger.info(
                "request refused: %s %s -> %d [%s] %s",
                request.method,
                request.raw_path,
                response.status,
                summary,
                response.body[:200].decode("utf-8", "replace"),
            )
        return response

    # ------------------------------------------------------------------------------ local page, demo

    def _local(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path.rstrip("/")
        if path == "/_local" and request.method in ("GET", "HEAD"):
            return _file_response(LOCAL_PAGE)
        if path == "/_local/state.json" and request.method in ("GET", "HEAD"):
            return _json_response(200, self.state())
        if path == "/_local/demo-config.json":
            return _json_response(200, self.demo_config())
        if path == "/_local/stack.json":
            return _json_response(200, self.stack_info())
        if path == "/_local/advance" and request.method == "POST":
            return self._advance(request.raw_query)
        return _json_response(404, {"message": "Not Found"})

    def _advance(self, query: str) -> HttpResponse:
        try:
            seconds = float(parse_qs(query).get("seconds", [""])[0])
        except ValueError:
            return _error_response(400, "invalid_seconds", "give ?seconds=N")
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            return _error_response(409, "clock_fixed", f"{type(self.clock).__name__} cannot be moved")
        if not math.isfinite(seconds) or seconds <= 0:
            return _error_response(400, "invalid_seconds", "the stack clock only moves forward, by a number of seconds")
        if seconds > MAX_ADVANCE.total_seconds():
            return _error_response(400, "invalid_seconds", f"skip at most {MAX_ADVANCE.days} days at a time")
        advance(timedelta(seconds=seconds))
        logger.info("skipped ahead %s", timedelta(seconds=seconds))
        self.on_clock_moved()
        return _json_response(200, {"now": self.clock.now().isoformat(timespec="seconds")})

    def _demo(self, relative: str) -> HttpResponse:
        candidate = (DEMO_DIR / relative).resolve()
        # Only files directly inside the demo folder: no path tricks.
        if candidate.parent != DEMO_DIR or not candidate.is_file():
            return _json_response(404, {"message": "Not Found"})
        return _file_response(candidate)


def _summarise_tracking_body(body: bytes, path: str) -> str:
    """``track product_viewed anonymousId=a1`` or ``batch of 3``, for one log line."""
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # the handler answered it already; this is only the log line
        return f"{len(body)} bytes"
    if not isinstance(payload, dict):
        return "not an object"
    if isinstance(payload.get("batch"), list):
        return f"batch of {len(payload['batch'])}"
    kind = payload.get("type") or path.rstrip("/").rsplit("/", 1)[-1]
    label = payload.get("event") or payload.get("name") or ""
    who = next((f"{name}={payload[name]}" for name in ("userId", "anonymousId") if payload.get(name)), "no visitor id")
    return " ".join(part for part in (str(kind), str(label), who) if part)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    application: LocalApplication


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "footprint-local"

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the application logs what matters, one line per request."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers before a request reaches the application (an unknown method, a bad
        request line or header), as a JSON 4xx like the rest: an unknown method is a 405, not a 501."""
        status = HTTPStatus.METHOD_NOT_ALLOWED if code == HTTPStatus.NOT_IMPLEMENTED else HTTPStatus(code)
        if status >= 500:
            status = HTTPStatus.BAD_REQUEST
        reason = message or status.phrase
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            reason = f"method {self.command!r} is not supported; use one of {ALLOWED_METHODS}"
        code_name = status.phrase.lower().replace(" ", "_")
        self._refuse(_error_response(status.value, code_name, reason), allow=status == HTTPStatus.METHOD_NOT_ALLOWED)

    def _refuse(self, response: HttpResponse, *, allow: bool = False) -> None:
        """Answer and close the connection: what follows on it cannot be trusted to be a request."""
        self.close_connection = True
        response.headers["connection"] = "close"
        if allow:
            response.headers["allow"] = ALLOWED_METHODS
        self._write(response)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        declared = (self.headers.get("content-length") or "0").strip()
        if not _CONTENT_LENGTH.fullmatch(declared):
            reason = f"Content-Length must be a number of bytes, not {declared[:40]!r}"
            self._refuse(_error_response(400, "invalid_content_length", reason))
            return
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self._refuse(_error_response(413, "request_too_large", f"the body is over {MAX_BODY_BYTES} bytes"))
            return
        body = self.rfile.read(length) if length > 0 else b""
        request = HttpRequest(
            method=self.command,
            raw_path=parts.path,
            raw_query=parts.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            response = self.server.application.handle(request)
        except Exception:
            logger.exception("the local server failed on %s %s", self.command, parts.path)
            response = _json_response(500, {"message": "Internal Server Error"})
        self._write(response)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name != "content-length":
                self.send_header(name, value)
        for cookie in response.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class LocalHttpServer:
    """The HTTP server on loopback, served from a background thread.

    The port is bound on construction, so a busy port fails the stack before anything else starts.
    """

    def __init__(self, port: int) -> None:
        self._server = _Server((LOOPBACK, port), _RequestHandler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def serve(self, application: LocalApplication) -> None:
        application.domain_name = f"{LOOPBACK}:{self.port}"
        self._server.application = application
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
