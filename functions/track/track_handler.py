"""track: the public tracking API, compatible with Segment's HTTP Tracking API.

Routes: POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias, and
the one-letter paths analytics.js posts to when its apiHost points here (/v1/b, /v1/t, /v1/i,
/v1/p, /v1/s, /v1/g, /v1/a). Success is Segment's ``{"success": true}``; every error is
``{"error": {"code", "reason", "errors"}}`` with the status chosen in ``STATUS_BY_ERROR``; a 429
(a source over its rate or daily quota, footprint.services.quotas) also carries ``Retry-After``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.wiring import ingest_service
from footprint.http_api import JsonResponse, answer_unknown_routes_and_bugs, error_response, json_response
from footprint.models.events import EventType
from footprint.services.ingest import (
    IngestError,
    InvalidPayloadError,
    OriginNotAllowedError,
    PayloadTooLargeError,
    StoreUnavailableError,
    TrackingRequest,
    UnauthorizedError,
    UnsupportedEncodingError,
)
from footprint.services.quotas import TooManyRequestsError

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()

STATUS_BY_ERROR: dict[type[IngestError], HTTPStatus] = {
    InvalidPayloadError: HTTPStatus.BAD_REQUEST,
    UnauthorizedError: HTTPStatus.UNAUTHORIZED,
    OriginNotAllowedError: HTTPStatus.FORBIDDEN,
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnsupportedEncodingError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    StoreUnavailableError: HTTPStatus.SERVICE_UNAVAILABLE,
    TooManyRequestsError: HTTPStatus.TOO_MANY_REQUESTS,
}


def ingest(call: EventType | None) -> JsonResponse:
    request = app.current_event
    result = ingest_service().ingest(
        TrackingRequest(
            call=call,
            body=request.body,
            is_base64_encoded=bool(request.is_base64_encoded),
            authorization=request.headers.get("authorization"),
            origin=request.headers.get("origin"),
            content_encoding=request.headers.get("content-encoding"),
        )
    )
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=result.accepted)
    return json_response({"success": True, "accepted": result.accepted})


@app.post("/v1/batch")
@app.post("/v1/b")
def batch() -> JsonResponse:
    return ingest(None)


@app.post("/v1/track")
@app.post("/v1/t")
def track() -> JsonResponse:
    return ingest("track")


@app.post("/v1/identify")
@app.post("/v1/i")
def identify() -> JsonResponse:
    return ingest("identify")


@app.post("/v1/page")
@app.post("/v1/p")
def page() -> JsonResponse:
    return ingest("page")


@app.post("/v1/screen")
@app.post("/v1/s")
def screen() -> JsonResponse:
    return ingest("screen")


@app.post("/v1/group")
@app.post("/v1/g")
def group() -> JsonResponse:
    return ingest("group")


@app.post("/v1/alias")
@app.post("/v1/a")
def alias() -> JsonResponse:
    return ingest("alias")


@app.exception_handler(IngestError)
def refused(error: IngestError) -> JsonResponse:
    status = next(
        (STATUS_BY_ERROR[kind] for kind in type(error).__mro__ if kind in STATUS_BY_ERROR), HTTPStatus.BAD_REQUEST
    )
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.warning("tracking request not stored", extra={"code": error.code}, exc_info=error)
    else:
        logger.info("tracking request refused", extra={"code": error.code, "reason": error.reason})
    response = error_response(status, error.code, error.reason, error.errors)
    if isinstance(error, TooManyRequestsError):
        # Delta-seconds (RFC 9110) a client waits before retrying; the template exposes it to browsers.
        response.headers["Retry-After"] = str(error.retry_after_seconds)
        metrics.add_metric(name="RequestsLimited", unit=MetricUnit.Count, value=1)
    return response


answer_unknown_routes_and_bugs(app, logger, "POST to /v1/batch, /v1/track, /v1/identify, ...")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
