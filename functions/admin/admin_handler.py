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
- GET  /admin/sources                           write keys and their sources (?source_id=)
- POST /admin/sources                           body: {"source_id", "name", "allowed_origins", "trusted", ...} -> 201
- POST /admin/sources/keys/{key_id}/rotate      ?grace=24h: a new key; the old one works until the grace ends
- POST /admin/sources/keys/{key_id}/revoke      the key stops working (within the tracking API's source cache)
- PUT  /admin/sources/keys/{key_id}/origins     body: {"allowed_origins": [...]}
- POST /admin/people/export                     body: {"source_id", "user_id" | "anonymous_id" | "profile_id"}
- POST /admin/people/delete                     the same body -> the deletion record
- POST /admin/messages                          one message to one person now (an order confirmation), with an
                                                idempotency key -> accepted, suppressed or unreachable

Every refusal is ``{"error": {"code", "reason", "errors"}}`` with a 4xx status, as on the tracking API.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.wiring import data_rights, journey_admin, source_admin, transactional_send
from footprint.http_api import JsonResponse, answer_unknown_routes_and_bugs, error_response, json_response
from footprint.services.admin_api import (
    AdminError,
    InvalidJourneyError,
    InvalidMessageError,
    InvalidRequestError,
    InvalidSimulationError,
    InvalidSourceError,
    JourneyNotFoundError,
    JourneyVersionExistsError,
    KeyRevokedError,
    PersonNotFoundError,
    RequestTooLargeError,
    UnknownJourneyError,
    UnknownKeyError,
    UnknownPersonError,
    parse_grace,
    parse_json_object,
    parse_version,
    request_text,
)
from footprint.tracing import traced

if TYPE_CHECKING:
    from pydantic import BaseModel

logger = Logger()
app = APIGatewayHttpResolver()

STATUS_BY_ERROR: dict[type[AdminError], HTTPStatus] = {
    InvalidRequestError: HTTPStatus.BAD_REQUEST,
    JourneyNotFoundError: HTTPStatus.NOT_FOUND,
    RequestTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    InvalidJourneyError: HTTPStatus.UNPROCESSABLE_ENTITY,
    InvalidSimulationError: HTTPStatus.UNPROCESSABLE_ENTITY,
    InvalidSourceError: HTTPStatus.UNPROCESSABLE_ENTITY,
    UnknownKeyError: HTTPStatus.NOT_FOUND,
    KeyRevokedError: HTTPStatus.CONFLICT,
    PersonNotFoundError: HTTPStatus.NOT_FOUND,
    UnknownPersonError: HTTPStatus.NOT_FOUND,
    InvalidMessageError: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def body() -> str:
    return request_text(app.current_event.body, bool(app.current_event.is_base64_encoded))


def caller() -> str:
    """The signing IAM principal, for the audit log (empty on the local stack, which has no IAM)."""
    return app.current_event.request_context.authorizer.iam.user_arn


def answer(payload: BaseModel | dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> JsonResponse:
    return json_response(payload if isinstance(payload, dict) else payload.model_dump(mode="json"), status)


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


@app.get("/admin/sources")
def list_sources() -> JsonResponse:
    keys = source_admin().list_keys(app.current_event.get_query_string_value("source_id") or None)
    return answer({"keys": [key.model_dump(mode="json") for key in keys]})


@app.post("/admin/sources")
def create_source() -> JsonResponse:
    created = source_admin().create(parse_json_object(body()))
    logger.info("write key created", extra={"key_id": created.key.key_id, "caller": caller()})
    return answer(created, HTTPStatus.CREATED)


@app.post("/admin/sources/keys/<key_id>/rotate")
def rotate_source_key(key_id: str) -> JsonResponse:
    created = source_admin().rotate(key_id, parse_grace(app.current_event.get_query_string_value("grace")))
    logger.info("write key rotated", extra={"key_id": key_id, "new_key_id": created.key.key_id, "caller": caller()})
    return answer(created, HTTPStatus.CREATED)


@app.post("/admin/sources/keys/<key_id>/revoke")
def revoke_source_key(key_id: str) -> JsonResponse:
    revoked = source_admin().revoke(key_id)
    logger.info("write key revoked", extra={"key_id": key_id, "caller": caller()})
    return answer(revoked)


@app.put("/admin/sources/keys/<key_id>/origins")
def set_source_key_origins(key_id: str) -> JsonResponse:
    changed = source_admin().set_origins(key_id, parse_json_object(body()))
    logger.info("write key origins changed", extra={"key_id": key_id, "caller": caller()})
    return answer(changed)


# POST, not GET: a person's ids stay out of URLs and access logs.
@app.post("/admin/people/export")
def export_person() -> JsonResponse:
    return answer(data_rights().export(parse_json_object(body())))


@app.post("/admin/people/delete")
def delete_person() -> JsonResponse:
    record = data_rights().delete(parse_json_object(body()), requested_by=caller())
    logger.info("person deleted", extra={"deletion_id": record.deletion_id, "caller": caller()})
    return answer(record)


@app.post("/admin/messages")
def send_message() -> JsonResponse:
    answer_ = transactional_send().send(parse_json_object(body()))
    logger.info("api message", extra={"message_id": answer_.message_id, "result": answer_.result, "caller": caller()})
    return answer(answer_, HTTPStatus.ACCEPTED if answer_.result == "accepted" else HTTPStatus.OK)


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


answer_unknown_routes_and_bugs(app, logger, "see GET /admin/journeys, GET /admin/sources and their POST routes")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
