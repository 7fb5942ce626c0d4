"""The local stack's HTTP server on a real socket, with hostile requests: never a 5xx for what a client sends,
and every refusal of its own in the JSON error shape of the stack's APIs.

The server runs alone here (no moto, no pumps): a stand-in function answers each route as the track
handler would refuse a body, so what is tested is the server around it.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from footprint.clock import ManualClock
from footprint_local.http_server import LocalApplication, LocalHttpServer
from footprint_local.lambdas import Invocation
from footprint_local.template import HttpRoute
from tests.hostile import SEED, deep_json, tracking_bodies

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class RefusingFunction:
    """Answers every request with a 400 in the error shape, like track does for a bad body."""

    def invoke(self, event: Any) -> Invocation:
        body = {"error": {"code": "invalid_payload", "reason": "no", "errors": []}}
        return Invocation(
            payload={"statusCode": 400, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
        )


@pytest.fixture
def server() -> Iterator[tuple[LocalHttpServer, ManualClock]]:
    clock = ManualClock(START)
    application = LocalApplication(
        routes=[HttpRoute("POST", "/v1/track", "TrackFunction"), HttpRoute("POST", "/v1/batch", "TrackFunction")],
        functions={"TrackFunction": RefusingFunction()},  # type: ignore[dict-item]
        clock=clock,
        cors=None,
        state=dict,
        demo_config=dict,
    )
    running = LocalHttpServer(0)
    running.serve(application)
    yield running, clock
    running.stop()


def exchange(server: LocalHttpServer, raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes, read one response: (status, headers, JSON body or None)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body) if body else None


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if "content_length" in headers:
        lines.append(f"Content-Length: {headers.pop('content_length')}")
    elif body:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def assert_error_shape(status: int, body: Any, expected: int) -> None:
    assert status == expected, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "reason", "errors"}
    assert body["error"]["reason"]


def test_a_deeply_nested_body_is_answered_by_the_handler_not_a_500(server: tuple[LocalHttpServer, ManualClock]) -> None:
    status, _, body = exchange(server[0], request("POST", "/v1/track", deep_json(100_000).encode()))

    assert_error_shape(status, body, 400)


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "CONNECT"])
def test_an_unknown_method_is_a_405_in_the_error_shape(
    server: tuple[LocalHttpServer, ManualClock], method: str
) -> None:
    status, headers, body = exchange(server[0], request(method, "/v1/track"))

    assert_error_shape(status, body, 405)
    assert "POST" in headers["allow"]


@pytest.mark.parametrize("length", ["abc", "-1", "1.5", "1e3", "0x10", "\uff11\uff12", "99999999999999999999", ""])
def test_a_malformed_content_length_is_a_400_in_the_error_shape(
    server: tuple[LocalHttpServer, ManualClock], length: str
) -> None:
    status, headers, body = exchange(server[0], request("POST", "/v1/track", b"{}", content_length=length))

    if length == "":  # no value: no body, which the route refuses like any empty body
        assert status == 400
        return
    assert_error_shape(status, body, 400)
    assert headers["connection"] == "close"


def test_a_body_over_the_api_limit_is_refused_unread(server: tuple[LocalHttpServer, ManualClock]) -> None:
    status, _, body = exchange(server[0], request("POST", "/v1/track", b"", content_length=str(11 * 1024 * 1024)))

    assert_error_shape(status, body, 413)


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "1e300", "-5", "0", "", "x", "9" * 5000])
def test_skip_ahead_refuses_what_is_not_a_forward_move_with_a_400(
    server: tuple[LocalHttpServer, ManualClock], seconds: str
) -> None:
    running, clock = server
    status, _, body = exchange(running, request("POST", f"/_local/advance?seconds={seconds}"))

    assert_error_shape(status, body, 400)
    assert clock.now() == START


def test_skip_ahead_still_moves_the_clock(server: tuple[LocalHttpServer, ManualClock]) -> None:
    running, clock = server
    status, _, body = exchange(running, request("POST", "/_local/advance?seconds=90"))

    assert status == 200
    assert clock.now() == START + timedelta(seconds=90)
    assert body == {"now": (START + timedelta(seconds=90)).isoformat(timespec="seconds")}


def test_hostile_tracking_bodies_never_get_a_5xx_from_the_server(server: tuple[LocalHttpServer, ManualClock]) -> None:
    rng = random.Random(SEED)
    for what, text in tracking_bodies(rng, count=40):
        raw = text.encode("utf-8", errors="surrogatepass")
        status, _, _ = exchange(server[0], request("POST", "/v1/batch", raw, content_type="application/json"))
        assert status < 500, what
