"""The JSON error shape every HTTP route of Footprint answers with, and the catch-alls behind it.

``{"error": {"code": "...", "reason": "...", "errors": [{"location": ..., "message": ...}]}}``: the
same for the tracking API and the admin API, so clients handle one shape.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

JsonResponse = Response[dict[str, Any]]


def json_response(body: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> JsonResponse:
    return Response(status.value, content_types.APPLICATION_JSON, body)


def error_body(code: str, reason: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The error shape itself (the local stack's HTTP server answers its own refusals with it too)."""
    return {"error": {"code": code, "reason": reason, "errors": errors or []}}


def error_response(
    status: HTTPStatus, code: str, reason: str, errors: list[dict[str, str]] | None = None
) -> JsonResponse:
    return json_response(error_body(code, reason, errors), status)


def answer_unknown_routes_and_bugs(app: APIGatewayHttpResolver, logger: Logger, routes_hint: str) -> None:
    """A 404 naming the routes for a wrong path; a logged 500 without details for a bug (never for input)."""

    @app.not_found
    def no_route(_: NotFoundError) -> JsonResponse:
        return error_response(HTTPStatus.NOT_FOUND, "not_found", routes_hint)

    @app.exception_handler(Exception)
    def failed(_: Exception) -> JsonResponse:
        logger.exception("request failed")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side")
