"""Hostile bodies (tests/hostile.py, a fixed seed) against the public tracking routes and the admin routes,
handlers on moto: never a 5xx, every refusal in the JSON error shape, and nothing accepted that evaluate
would refuse."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

import track_handler
from footprint.engine import EventInput
from footprint.models.events import TrackedEvent
from tests.api_gateway import HttpResult, http_api_event, http_result
from tests.hostile import QUERY_VALUES, SEED, journey_yaml_bodies, simulation_bodies, source_bodies, tracking_bodies
from tests.integration.conftest import Tables
from tests.integration.test_admin_handler import SERVICES_YAML, AdminApi, admin
from tests.lambda_context import lambda_context
from tests.routes import V1_PATHS

# Refused requests publish no metric; Powertools warns about that, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

WRITE_KEY = "wk-hostile"
__all__ = ["admin"]  # the admin API fixture, with the channels the template turns on by default


def assert_json_answer(result: HttpResult, what: str) -> None:
    assert result.status < 500, (what, result.status, result.body)
    assert result.headers["content-type"].startswith("application/json"), what
    if result.status >= 400:
        assert set(result.body) == {"error"}, what
        assert set(result.body["error"]) == {"code", "reason", "errors"}, what
        assert all(set(error) == {"location", "message"} for error in result.body["error"]["errors"]), what


@pytest.fixture
def track_api(tables: Tables) -> Iterator[Tables]:
    source = {"source_id": "shop", "name": "Shop", "allowed_origins": ["https://shop.example.com"]}
    tables.client.put_item(
        TableName=tables.config, Item={"id": {"S": f"source/{WRITE_KEY}"}, "value": {"S": json.dumps(source)}}
    )
    track_handler.ingest_service.cache_clear()
    yield tables
    track_handler.ingest_service.cache_clear()


def test_hostile_tracking_bodies_never_get_a_5xx_and_what_is_accepted_evaluate_can_process(
    track_api: Tables,
) -> None:
    rng = random.Random(SEED)
    accepted = 0
    for index, (what, body) in enumerate(tracking_bodies(rng, count=150)):
        path = V1_PATHS[index % len(V1_PATHS)] if not body.startswith('{"batch"') else "/v1/batch"
        event = http_api_event(path, body, write_key=WRITE_KEY)
        result = http_result(track_handler.handler(event, lambda_context("TrackFunction")))
        assert_json_answer(result, what)
        accepted += result.status == 200

    # Everything stored reads back as evaluate reads it and becomes an engine input: no poison gets in.
    items = track_api.client.scan(TableName=track_api.events)["Items"]
    assert accepted >= 1
    assert len(items) >= 1
    for item in items:
        stored = TrackedEvent.model_validate_json(item["body"]["S"])
        EventInput.from_tracked(stored)


def test_hostile_journey_yaml_never_gets_a_5xx(admin: AdminApi) -> None:
    rng = random.Random(SEED)
    for index, (what, body) in enumerate(journey_yaml_bodies(SERVICES_YAML, rng, count=40)):
        route = "/admin/journeys/validate" if index % 2 else "/admin/journeys"
        assert_json_answer(admin.call("POST", route, body), what)


def test_hostile_simulations_never_get_a_5xx(admin: AdminApi) -> None:
    rng = random.Random(SEED)
    for what, body in simulation_bodies(SERVICES_YAML, rng, count=60):
        assert_json_answer(admin.call("POST", "/admin/journeys/simulate", body, content_type="application/json"), what)


def test_hostile_sources_never_get_a_5xx(admin: AdminApi) -> None:
    rng = random.Random(SEED)
    created = admin.call("POST", "/admin/sources", '{"source_id": "shop"}', content_type="application/json")
    key_id = created.body["key"]["key_id"]
    for what, body in source_bodies(rng, count=60):
        assert_json_answer(admin.call("POST", "/admin/sources", body, content_type="application/json"), what)
        for route in ("/admin/people/export", "/admin/people/delete", "/admin/messages"):
            assert_json_answer(admin.call("POST", route, body, content_type="application/json"), f"{route} {what}")
        origins = admin.call(
            "PUT", "/admin/sources/keys/{key_id}/origins", body, path_parameters={"key_id": key_id},
            content_type="application/json",
        )  # fmt: skip
        assert_json_answer(origins, f"origins {what}")
    for value in [*QUERY_VALUES, "../config", "journey/x"]:
        for action in ("rotate", "revoke"):
            result = admin.call("POST", f"/admin/sources/keys/{{key_id}}/{action}", path_parameters={"key_id": value})
            assert_json_answer(result, f"{action} {value[:12]!r}")
        rotate = admin.call(
            "POST", "/admin/sources/keys/{key_id}/rotate", path_parameters={"key_id": key_id}, query={"grace": value}
        )
        assert_json_answer(rotate, f"rotate grace={value[:12]!r}")
        listed = admin.call("GET", "/admin/sources", query={"source_id": value})
        assert_json_answer(listed, f"list source_id={value[:12]!r}")


def test_hostile_path_and_query_values_never_get_a_5xx(admin: AdminApi) -> None:
    assert admin.call("POST", "/admin/journeys", SERVICES_YAML).status == 201
    journey_ids = ["services-consult", "x" * 2_000, "../config", "\u0000", "journey/../../x", "%00"]
    for journey_id in journey_ids:
        for route in ("/admin/journeys/{journey_id}/pause", "/admin/journeys/{journey_id}/resume"):
            result = admin.call("POST", route, path_parameters={"journey_id": journey_id})
            assert_json_answer(result, f"{route} {journey_id[:10]!r}")
    for value in QUERY_VALUES:
        for name in ("version", "since", "until"):
            query: dict[str, Any] = {name: value}
            report = admin.call(
                "GET",
                "/admin/journeys/{journey_id}/report",
                path_parameters={"journey_id": "services-consult"},
                query=query,
            )
            assert_json_answer(report, f"report {name}={value[:12]!r}")
        resume = admin.call(
            "POST",
            "/admin/journeys/{journey_id}/resume",
            path_parameters={"journey_id": "services-consult"},
            query={"version": value},
        )
        assert_json_answer(resume, f"resume version={value[:12]!r}")
