"""Sources and write keys through the admin API (API Gateway events into admin_handler, ConfigTable on
moto), and what the tracking API then does with each key: a new key tracks, a rotated-out key works
until its grace period ends, a revoked key is refused at once, a changed origin list holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import admin_handler
import track_handler
from footprint.clock import ManualClock, current_clock, use_clock
from footprint.services.sources import key_id
from footprint_local.cli import main as footprint_cli
from tests.api_gateway import HttpResult, http_api_event, http_result
from tests.integration.conftest import Tables
from tests.integration.test_admin_handler import AdminApi, assert_error
from tests.lambda_context import lambda_context

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SHOP = "https://shop.example.com"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def admin(tables: Tables) -> AdminApi:
    return AdminApi(admin_handler, tables)  # `tables` gives every test fresh moto and fresh wiring


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManualClock]:
    # The tracking API reads each source afresh here, as it does once its cache has expired.
    monkeypatch.setenv("CONFIG_CACHE_SECONDS", "0")
    previous = current_clock()
    manual = ManualClock(T0)
    use_clock(manual)
    yield manual
    use_clock(previous)


def track(write_key: str, origin: str = SHOP) -> HttpResult:
    body = {"type": "track", "event": "product_viewed", "anonymousId": "a1", "writeKey": write_key}
    event = http_api_event("/v1/t", json.dumps(body), headers={"origin": origin}, content_type="text/plain")
    return http_result(track_handler.handler(event, lambda_context("TrackFunction")))


def create(admin: AdminApi, **body: Any) -> dict[str, Any]:
    result = admin.call("POST", "/admin/sources", json.dumps(body), content_type="application/json")
    assert result.status == 201, result.body
    created: dict[str, Any] = result.body
    return created


def test_a_new_browser_key_tracks_from_its_origins_only(admin: AdminApi, clock: ManualClock) -> None:
    created = create(admin, source_id="shop", name="Shop", allowed_origins=[SHOP], identity_secret=True)
    key = created["key"]

    assert key["status"] == "active"
    assert key["source_id"] == "shop"
    assert key["key_id"] == key_id(key["write_key"])
    assert len(key["write_key"]) == 32
    assert created["identity_secret"]
    assert track(key["write_key"]).status == 200
    assert_error(track(key["write_key"], origin="https://evil.example"), 403, "origin_not_allowed")
    stored = json.loads(admin.config_item(f"source/{key['write_key']}") or "{}")
    assert stored["identity_secret"] == created["identity_secret"]


def test_the_list_shows_browser_keys_whole_and_trusted_keys_never(admin: AdminApi, clock: ManualClock) -> None:
    browser = create(admin, source_id="shop", allowed_origins=[SHOP])["key"]
    backend = create(admin, source_id="shop", name="Shop backend", trusted=True)["key"]
    create(admin, source_id="blog", allowed_origins=["https://blog.example.com"])

    listed = admin.call("GET", "/admin/sources", query={"source_id": "shop"}).body["keys"]

    by_id = {key["key_id"]: key for key in listed}
    assert set(by_id) == {browser["key_id"], backend["key_id"]}
    assert by_id[browser["key_id"]]["write_key"] == browser["write_key"]
    assert by_id[backend["key_id"]]["write_key"] == backend["write_key"][:4] + "…"
    assert backend["write_key"] not in json.dumps(listed)
    assert len(admin.call("GET", "/admin/sources").body["keys"]) == 3


def test_a_rotated_out_key_works_until_its_grace_ends(admin: AdminApi, clock: ManualClock) -> None:
    old = create(admin, source_id="shop", allowed_origins=[SHOP])["key"]

    result = admin.call(
        "POST",
        "/admin/sources/keys/{key_id}/rotate",
        path_parameters={"key_id": old["key_id"]},
        query={"grace": "1h"},
        content_type=None,
    )

    assert result.status == 201, result.body
    new, replaced = result.body["key"], result.body["replaced"]
    assert new["write_key"] != old["write_key"]
    assert new["allowed_origins"] == [SHOP]
    assert replaced["status"] == "expiring"
    assert replaced["expires_at"] == "2026-12-01T10:00:00Z"
    assert track(old["write_key"]).status == 200
    assert track(new["write_key"]).status == 200

    clock.advance(timedelta(hours=1))

    assert_error(track(old["write_key"]), 401, "write_key_revoked")
    assert track(new["write_key"]).status == 200
    listed = {key["key_id"]: key["status"] for key in admin.call("GET", "/admin/sources").body["keys"]}
    assert listed == {old["key_id"]: "expired", new["key_id"]: "active"}


def test_a_revoked_key_is_refused_at_once_and_stays_on_record(admin: AdminApi, clock: ManualClock) -> None:
    key = create(admin, source_id="shop", allowed_origins=[SHOP])["key"]
    route = "/admin/sources/keys/{key_id}/revoke"

    first = admin.call("POST", route, path_parameters={"key_id": key["key_id"]}, content_type=None)
    clock.advance(timedelta(minutes=5))
    again = admin.call("POST", route, path_parameters={"key_id": key["key_id"]}, content_type=None)

    assert first.status == again.status == 200
    assert first.body["status"] == "revoked"
    assert again.body["revoked_at"] == first.body["revoked_at"]
    assert_error(track(key["write_key"]), 401, "write_key_revoked")
    rotate = admin.call(
        "POST", "/admin/sources/keys/{key_id}/rotate", path_parameters={"key_id": key["key_id"]}, content_type=None
    )
    assert_error(rotate, 409, "key_not_usable")


def test_changed_origins_hold_for_the_tracking_api(admin: AdminApi, clock: ManualClock) -> None:
    key = create(admin, source_id="shop", allowed_origins=[SHOP])["key"]
    body = json.dumps({"allowed_origins": ["https://new.example.com"]})

    result = admin.call(
        "PUT",
        "/admin/sources/keys/{key_id}/origins",
        body,
        path_parameters={"key_id": key["key_id"]},
        content_type="application/json",
    )

    assert result.status == 200
    assert result.body["allowed_origins"] == ["https://new.example.com"]
    assert track(key["write_key"], origin="https://new.example.com").status == 200
    assert_error(track(key["write_key"]), 403, "origin_not_allowed")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"source_id": "Shop Site"}, "invalid_source"),
        ({"source_id": "shop", "allowed_origins": ["https://shop.example.com/path"]}, "invalid_origin"),
        ({"source_id": "shop", "trusted": True, "allowed_origins": [SHOP]}, "invalid_source"),
        ({"source_id": "shop", "unknown": 1}, "invalid_source"),
    ],
)
def test_a_bad_source_gets_a_422_naming_the_field(
    admin: AdminApi, clock: ManualClock, body: dict[str, Any], code: str
) -> None:
    result = admin.call("POST", "/admin/sources", json.dumps(body), content_type="application/json")

    errors = assert_error(result, 422, code)
    assert errors
    assert all(error["location"].startswith("body") for error in errors)
    assert admin.call("GET", "/admin/sources").body["keys"] == []


def test_requests_that_are_not_sources_get_4xx(admin: AdminApi, clock: ManualClock) -> None:
    assert_error(admin.call("POST", "/admin/sources", "[1]", content_type="application/json"), 400, "invalid_json")
    assert_error(admin.call("POST", "/admin/sources", "{", content_type="application/json"), 400, "invalid_json")
    unknown = admin.call(
        "POST", "/admin/sources/keys/{key_id}/revoke", path_parameters={"key_id": "nope"}, content_type=None
    )
    assert_error(unknown, 404, "unknown_key")
    key = create(admin, source_id="shop", allowed_origins=[SHOP])["key"]
    bad_grace = admin.call(
        "POST",
        "/admin/sources/keys/{key_id}/rotate",
        path_parameters={"key_id": key["key_id"]},
        query={"grace": "forever"},
        content_type=None,
    )
    assert_error(bad_grace, 422, "invalid_grace")


def test_the_cli_manages_the_same_keys(admin: AdminApi, clock: ManualClock) -> None:
    config = ["--config-table", admin.tables.config]

    created = _cli(["sources", "create", "shop", "--name", "Shop", "--origin", SHOP, "--json", *config])
    write_key = json.loads(created)["key"]["write_key"]
    listed = _cli(["sources", "list", *config])
    revoked = _cli(["sources", "revoke", key_id(write_key), *config])

    assert key_id(write_key) in listed
    assert "shop" in listed
    assert SHOP in listed
    assert "revoked" in revoked
    assert_error(track(write_key), 401, "write_key_revoked")


def _cli(argv: list[str]) -> str:
    import io

    out = io.StringIO()
    assert footprint_cli(argv, out=out) == 0, out.getvalue()
    return out.getvalue()
