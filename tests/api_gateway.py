"""API Gateway HTTP API (payload format 2.0) events as Lambda receives them, and the answers read back."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from dataclasses import dataclass
from typing import Any

from tests.builders import T0


def basic_auth(write_key: str) -> str:
    """What every Segment server library sends: the write key as the Basic user, no password."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def http_api_event(
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    write_key: str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
    gzipped: bool = False,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """One request as API Gateway hands it to the function.

    ``body`` may be a JSON-able value (serialised compactly), ``str`` or ``bytes`` (sent as is).
    Header names are lower-case, as HTTP APIs deliver them. gzip bodies are binary, so API Gateway
    base64-encodes them; ``base64_encoded`` forces that for any body.
    """
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode("utf-8", errors="surrogatepass")
    else:
        raw = json.dumps(body, separators=(",", ":")).encode()
    all_headers = {
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "analytics-python/2.3.4",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-proto": "https",
        "accept": "*/*",
    }
    if content_type:
        all_headers["content-type"] = content_type
    if write_key is not None:
        all_headers["authorization"] = basic_auth(write_key)
    if gzipped:
        raw = gzip.compress(raw)
        all_headers["content-encoding"] = "gzip"
    all_headers["content-length"] = str(len(raw))
    all_headers.update({name.lower(): value for name, value in (headers or {}).items()})
    encode = gzipped or base64_encoded
    if encode:
        wire_body: str | None = base64.b64encode(raw).decode()
    else:
        wire_body = raw.decode("utf-8", errors="surrogatepass") if raw else None
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": uuid.uuid4().hex[:16] + "=",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": T0.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(T0.timestamp() * 1000),
        },
        "body": wire_body,
        "isBase64Encoded": encode,
    }


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Any
    headers: dict[str, str]


def http_result(response: dict[str, Any]) -> HttpResult:
    """The function's answer as the client sees it (the body parsed as JSON)."""
    text = response.get("body") or ""
    return HttpResult(
        status=response["statusCode"],
        body=json.loads(text) if text else None,
        headers={name.lower(): value for name, value in (response.get("headers") or {}).items()},
    )
