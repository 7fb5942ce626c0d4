"""email links: the public routes behind the links of every email, signed, working without a login.

GET  /v1/email/unsubscribe?token=...  a confirmation page (Vietnamese and English) whose button POSTs
POST /v1/email/unsubscribe?token=...  unsubscribes (RFC 8058 one-click from the mail client, or the
                                      page's button): 200, the same answer every time
GET  /v1/email/click?token=...        records message_clicked, then 302 to the message's own link

A tampered, forged or truncated token is a 400: an HTML page for a person, the JSON error shape for
a mail client's one-click POST. Nothing a client sends ends in a 500.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.email_wiring import email_link_service
from footprint.email_links import InvalidLinkError
from footprint.email_pages import confirmation_page, invalid_link_page, unsubscribed_page
from footprint.http_api import answer_unknown_routes_and_bugs, error_response, json_response
from footprint.services.retries import RetryableDeliveryError
from footprint.services.tracking import StoreUnavailableError
from footprint.tracing import traced

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()

HTML = "text/html; charset=utf-8"
# Pages are per recipient: never cached by a proxy, never indexed.
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
# RFC 8058's body, List-Unsubscribe=One-Click, urlencoded or as a multipart/form-data field.
ONE_CLICK_VALUE = "One-Click"


def page(body: str, status: HTTPStatus = HTTPStatus.OK) -> Response[str]:
    return Response(status.value, HTML, body, headers=dict(PAGE_HEADERS))


def token() -> str | None:
    return app.current_event.get_query_string_value("token")


def is_one_click() -> bool:
    """A mail client's RFC 8058 POST (List-Unsubscribe=One-Click), not the page's button."""
    body = app.current_event.decoded_body or ""
    return "List-Unsubscribe" in body and ONE_CLICK_VALUE in body


@app.get("/v1/email/unsubscribe")
def unsubscribe_page() -> Response[str]:
    email_link_service().check_unsubscribe(token())
    return page(confirmation_page("?" + urlencode({"token": token() or ""})))


@app.post("/v1/email/unsubscribe")
def unsubscribe() -> Response[Any]:
    one_click = is_one_click()
    result = email_link_service().unsubscribe(token(), method="one_click" if one_click else "page")
    metrics.add_metric(name="EmailUnsubscribes", unit=MetricUnit.Count, value=1)
    if one_click:
        return json_response({"unsubscribed": True, "channel": result.channel})
    return page(unsubscribed_page())


@app.get("/v1/email/click")
def click() -> Response[str]:
    url = email_link_service().click(token())
    # A header is ASCII: non-ASCII characters of the link (a Vietnamese path) are percent-encoded.
    location = quote(url, safe=":/?#[]@!$&'()*+,;=%~")
    return Response(HTTPStatus.FOUND.value, HTML, "", headers={"Location": location, **PAGE_HEADERS})


@app.exception_handler(InvalidLinkError)
def invalid_link(error: InvalidLinkError) -> Response[Any]:
    logger.info("email link refused", extra={"reason": str(error)})
    if app.current_event.http_method == "POST" and is_one_click():
        return error_response(HTTPStatus.BAD_REQUEST, "invalid_link", str(error))
    return page(invalid_link_page(), HTTPStatus.BAD_REQUEST)


@app.exception_handler(StoreUnavailableError)
@app.exception_handler(RetryableDeliveryError)
def unavailable(error: Exception) -> Response[Any]:
    logger.warning("email link not handled now", exc_info=error)
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "try again in a moment")


answer_unknown_routes_and_bugs(app, logger, "GET or POST /v1/email/unsubscribe, GET /v1/email/click")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
