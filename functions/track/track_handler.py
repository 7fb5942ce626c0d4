"""track: the public tracking API, compatible with Segment's HTTP Tracking API.

Routes: POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias, and
the one-letter paths analytics.js posts to when its apiHost points here (/v1/b, /v1/t, /v1/i,
/v1/p, /v1/s, /v1/g, /v1/a). Success is Segment's ``{"success": true}``; every error is
``{"error": {"code", "reason", "errors"}}`` with the status chosen in ``STATUS_BY_ERROR``; a 429
(a source over its rate or daily quota, footprint.services.quotas) also carries ``Retry-After``.

The visitor's side (footprint.services.onsite): GET /footprint.js, /footprint-ui.js and /footprint-sw.js, GET
/v1/projects/{writeKey}/settings, POST /v1/onsite (the visitor's pending onsite messages) and POST
/v1/onsite/ack (shown, clicked, dismissed, submitted). Answers to a browser name its origin in
Access-Control-Allow-Origin when the source allows it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.wiring import ingest_service, onsite_service
from footprint.http_api import JsonResponse, answer_unknown_routes_and_bugs, error_response, json_response
from footprint.services.tracking import (
    IdentityRequiredError,
    IngestError,
    InvalidPayloadError,
    NotFoundError,
    OriginNotAllowedError,
    PayloadTooLargeError,
    StoreUnavailableError,
    TooManyRequestsError,
    TrackingRequest,
    UnauthorizedError,
    UnsupportedEncodingError,
)
from footprint.tracing import traced

if TYPE_CHECKING:
    from footprint.models.events import EventType
    from footprint.services.onsite import Answer

logger = Logger()
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
    IdentityRequiredError: HTTPStatus.FORBIDDEN,
    NotFoundError: HTTPStatus.NOT_FOUND,
}
SCRIPT_TYPE = "text/javascript; charset=utf-8"
SCRIPT_CACHE = "public, max-age=300"
SETTINGS_CACHE = "public, max-age=60"


def tracking_request(call: EventType | None = None) -> TrackingRequest:
    request = app.current_event
    return TrackingRequest(
        call=call,
        body=request.body,
        is_base64_encoded=bool(request.is_base64_encoded),
        authorization=request.headers.get("authorization"),
        origin=request.headers.get("origin"),
        content_encoding=request.headers.get("content-encoding"),
        write_key_parameter=request.get_query_string_value("writeKey"),
    )


def with_cors(response: JsonResponse, allowed_origin: str | None) -> JsonResponse:
    """Name the (already checked) origin, so the page may read the answer and its Retry-After."""
    if allowed_origin:
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers["Vary"] = "Origin"
    return response


def answer(result: Answer, cache_control: str = "no-store") -> JsonResponse:
    response = json_response(result.body)
    response.headers["Cache-Control"] = cache_control
    return with_cors(response, result.allowed_origin)


def ingest(call: EventType | None) -> JsonResponse:
    result = ingest_service().ingest(tracking_request(call))
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=result.accepted)
    return with_cors(json_response({"success": True, "accepted": result.accepted}), result.allowed_origin)


@app.post("/v1/batch")
@app.post("/v1/b")
@app.post("/beacon/v1/batch")
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


@app.get("/footprint.js")
def script() -> Response[bytes]:
    return web_file("footprint.js")


@app.get("/footprint-ui.js")
def onsite_renderer() -> Response[bytes]:
    return web_file("footprint-ui.js")


@app.get("/footprint-sw.js")
def service_worker() -> Response[bytes]:
    return web_file("footprint-sw.js")


def web_file(name: str) -> Response[bytes]:
    served = onsite_service().script(name, app.current_event.headers.get("if-none-match"))
    # Any page may load the script (a <script> tag or a service worker's importScripts).
    headers = {"Cache-Control": SCRIPT_CACHE, "ETag": served.etag, "Access-Control-Allow-Origin": "*"}
    if served.status == HTTPStatus.NOT_MODIFIED:
        return Response(HTTPStatus.NOT_MODIFIED.value, None, b"", headers)
    return Response(HTTPStatus.OK.value, SCRIPT_TYPE, served.body, headers)


@app.get("/v1/projects/<write_key>/settings")
def project_settings(write_key: str) -> JsonResponse:
    headers = app.current_event.headers
    host, scheme = headers.get("host"), headers.get("x-forwarded-proto") or "https"
    return answer(onsite_service().settings(write_key, headers.get("origin"), host, scheme), SETTINGS_CACHE)


@app.post("/v1/onsite")
def onsite_inbox() -> JsonResponse:
    return answer(onsite_service().pending(tracking_request()))


@app.post("/v1/onsite/ack")
def onsite_ack() -> JsonResponse:
    return answer(onsite_service().ack(tracking_request()))


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
    return with_cors(response, error.allowed_origin)


answer_unknown_routes_and_bugs(
    app, logger, "POST to /v1/batch, /v1/track, /v1/identify, ..., /v1/onsite; GET /footprint.js"
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
