"""A loopback fake of Zalo's OAuth v4 token endpoint and ZNS template API, behaving as Zalo documents:

- ``POST /v4/oa/access_token`` (header ``secret_key``; form ``app_id``, ``grant_type=refresh_token``,
  ``refresh_token``) answers a new access token (``expires_in`` 90,000 s, about 25 h) and a new
  refresh token; **each refresh token works once**, a spent or unknown one gets an error;
- ``POST /message/template`` (header ``access_token``; JSON ``phone``, ``template_id``,
  ``template_data``, ``tracking_id``, optional ``mode``) answers HTTP 200 with ``error`` 0 and a
  ``msg_id``, or HTTP 200 with a negative ``error``: -124 for an unknown or expired access token,
  -108 for a phone that is not ``84…``, -109 for an unknown template, -111/-112 for missing template
  parameters, -119 for a number that cannot receive ZNS, -115 when out of quota.

Expiry follows the test's clock, so a test moves time instead of waiting.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from footprint.clock import Clock

APP_ID = "1234567890"
SECRET_KEY = "zalo-app-secret"
ACCESS_LIFETIME = timedelta(seconds=90_000)
PHONE = re.compile(r"^84\d{9,10}$")


@dataclass
class FakeZalo:
    clock: Clock
    # template id -> the parameters it needs
    templates: dict[str, set[str]] = field(default_factory=lambda: {"248079": {"customer_name", "product_name"}})
    cannot_receive: set[str] = field(default_factory=set)
    out_of_quota: bool = False
    valid_refresh_tokens: set[str] = field(default_factory=lambda: {"refresh-0"})
    access_tokens: dict[str, datetime] = field(default_factory=dict)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[str] = field(default_factory=list)
    refused_refreshes: list[str] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def oauth_url(self) -> str:
        return f"{self.base_url}/v4/oa/access_token"

    @property
    def zns_url(self) -> str:
        return f"{self.base_url}/message/template"

    def revoke_access_tokens(self) -> None:
        self.access_tokens.clear()

    def refresh(self, headers: dict[str, str], form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            token = form.get("refresh_token", "")
            if headers.get("secret_key") != SECRET_KEY or form.get("app_id") != APP_ID:
                self.refused_refreshes.append(token)
                return {"error": -14002, "error_name": "Invalid app", "error_description": "Invalid app or secret"}
            if form.get("grant_type") != "refresh_token" or token not in self.valid_refresh_tokens:
                self.refused_refreshes.append(token)
                return {
                    "error": -14014,
                    "error_name": "Invalid refresh token",
                    "error_description": "Invalid refresh token",
                }
            self.valid_refresh_tokens.discard(token)  # single use
            number = len(self.refreshes) + 1
            self.refreshes.append(token)
            access, new_refresh = f"access-{number}", f"refresh-{number}"
            self.valid_refresh_tokens.add(new_refresh)
            self.access_tokens[access] = self.clock.now() + ACCESS_LIFETIME
            return {
                "access_token": access,
                "refresh_token": new_refresh,
                "expires_in": str(int(ACCESS_LIFETIME.total_seconds())),
            }

    def template_message(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        expires = self.access_tokens.get(headers.get("access_token", ""))
        if expires is None or expires <= self.clock.now():
            return {"error": -124, "message": "Access token invalid"}
        phone = str(body.get("phone", ""))
        if not PHONE.match(phone):
            return {"error": -108, "message": "Phone number invalid"}
        needs = self.templates.get(str(body.get("template_id")))
        if needs is None:
            return {"error": -109, "message": "Template ID invalid"}
        data = body.get("template_data")
        if not isinstance(data, dict) or not data:
            return {"error": -111, "message": "Template data empty"}
        if not needs <= set(data):
            return {"error": -112, "message": "Template data invalid"}
        if phone in self.cannot_receive:
            return {"error": -119, "message": "Account can not receive ZNS"}
        if self.out_of_quota:
            return {"error": -115, "message": "Out of quota"}
        with self._lock:
            self.accepted.append({**body, "access_token": headers["access_token"]})
            msg_id = f"msg-{len(self.accepted)}"
        return {"error": 0, "message": "Success", "data": {"msg_id": msg_id, "sent_time": "1795000000000"}}


@contextmanager
def running_fake_zalo(clock: Clock) -> Iterator[FakeZalo]:
    zalo = FakeZalo(clock)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            if self.path == "/v4/oa/access_token":
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                zalo.requests.append((self.path, headers, form))
                answer = zalo.refresh(headers, form)
            elif self.path == "/message/template":
                body = json.loads(raw)
                zalo.requests.append((self.path, headers, body))
                answer = zalo.template_message(headers, body)
            else:
                self.send_error(404)
                return
            data = json.dumps(answer).encode()
            self.send_response(200)  # Zalo reports errors in the body, with HTTP 200
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    zalo.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield zalo
    finally:
        server.shutdown()
        server.server_close()
