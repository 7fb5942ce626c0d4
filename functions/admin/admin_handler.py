"""admin: manage journeys over HTTP. API Gateway lets a request in only when it is SigV4-signed by an IAM
principal allowed to call these routes (the AWS_IAM authorizer); the tracking API's write keys open nothing here.

Routes (every body is at most 256 KB):
- GET  /admin/journeys                          published journeys, their versions and where new visitors go
- POST /admin/journeys/validate                 body: journey YAML -> 200 summary, or 422 with the problems
- POST /admin/journeys                          body: journey YAML -> 201 (409 if that version holds other content)
- POST /admin/journeys/{journey_id}/pause       no new entries; visitors in flight finish
- POST /admin/journeys/{journey_id}/resume      ?version=N (default: the latest published)
- POST /admin/journeys/simulate                 body: {"journey": YAML, "events": [...], "until": "30d"} -> timeline
- GET  /admin/journeys/{journey_id}/report      ?version=N&since=T&until=T: the funnel from the recorded steps

Every refusal is ``{"error": {"code", "reason", "errors"}}`` with a 4xx status, as on the tracking API.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from footprint.adapters.journey_catalog import JourneyVersionExistsError, UnknownJourneyError
from footprint.adapters.wiring import journey_admin
from footprint.http_api import JsonResponse, answer_unknown_routes_and_bugs, error_response, json_response
from footprint.services.admin import (
    AdminError,
    InvalidJourneyError,
    InvalidRequestError,
    InvalidSimulationError,
    JourneyNotFoundError,
    RequestTooLargeError,
    parse_version,
    request_text,
)

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver()

STATUS_BY_ERROR: dict[type[AdminError], HTTPStatus] = {
    InvalidRequestError: HTTPStatus.BAD_REQUEST,
    JourneyNotFoundError: HTTPStatus.NOT_FOUND,
    RequestTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    InvalidJourneyError: HTTPStatus.UNPROCESSABLE_ENTITY,
    InvalidSimulationError: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def body() -> str:
    return request_text(app.current_event.body, bool(app.current_event.is_base64_encoded))


def caller() -> str:
    """The signing IAM principal, for the audit log (empty on the local stack, which has no IAM)."""
    return app.current_event.request_context.authorizer.iam.user_arn


def answer(payload: BaseModel | dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> JsonResponse:
    return json_response(payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload, status)


@app.get("/admin/journeys")
def list_journeys() -> JsonResponse:
    return answer({"journeys": [state.model_dump(mode="json") for state in journey_admin().list_journeys()]})


@app.post("/admin/journeys/validate")
def validate_journey() -> JsonResponse:
    return answer({"valid": True, "journey": journey_admin().validate(body()).model_dump(mode="json")})


@app.post("/admin/journeys")
def publish_journey() -> JsonResponse:
    result = journey_admin().publish(body())
    logger.info(
        "journey published",
        extra={"journey_id": result.journey.id, "version": result.journey.version, "caller": caller()},
    )
    return answer(result, HTTPStatus.CREATED)


@app.post("/admin/journeys/<journey_id>/pause")
def pause_journey(journey_id: str) -> JsonResponse:
    state = journey_admin().pause(journey_id)
    logger.info("journey paused", extra={"journey_id": journey_id, "caller": caller()})
    return answer(state)


@app.post("/admin/journeys/<journey_id>/resume")
def resume_journey(journey_id: str) -> JsonResponse:
    version = parse_version(app.current_event.get_query_string_value("version"))
    state = journey_admin().resume(journey_id, version)
    logger.info(
        "journey resumed", extra={"journey_id": journey_id, "version": state.active_version, "caller": caller()}
    )
    return answer(state)


@app.post("/admin/journeys/simulate")
def simulate_journey() -> JsonResponse:
    return answer(journey_admin().simulate(body()))


@app.get("/admin/journeys/<journey_id>/report")
def report_journey(journey_id: str) -> JsonResponse:
    query = app.current_event.get_query_string_value
    version = parse_version(query("version"))
    return answer(journey_admin().report(journey_id, version, since=query("since"), until=query("until")))


@app.exception_handler(AdminError)
def refused(error: AdminError) -> JsonResponse:
    status = next(
        (STATUS_BY_ERROR[kind] for kind in type(error).__mro__ if kind in STATUS_BY_ERROR), HTTPStatus.BAD_REQUEST
    )
    logger.info("admin request refused", extra={"code": error.code, "reason": error.reason})
    return error_response(status, error.code, error.reason, error.errors)


@app.exception_handler(JourneyVersionExistsError)
def version_exists(error: JourneyVersionExistsError) -> JsonResponse:
    reason = f"{error}; published versions never change: publish it under a new version number"
    return error_response(HTTPStatus.CONFLICT, "version_exists", reason)


@app.exception_handler(UnknownJourneyError)
def unknown_journey(error: UnknownJourneyError) -> JsonResponse:
    return error_response(HTTPStatus.NOT_FOUND, "unknown_journey", str(error))


answer_unknown_routes_and_bugs(app, logger, "see GET /admin/journeys and POST /admin/journeys/...")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
