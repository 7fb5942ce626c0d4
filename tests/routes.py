"""The HTTP routes the stack must serve: the template tests check both the loader and the deployed API."""

from __future__ import annotations

V1_PATHS = (
    "/v1/batch",
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/alias",
    "/v1/screen",
    "/v1/group",
    *(f"/v1/{short}" for short in "btipasg"),  # analytics.js short paths
    "/beacon/v1/batch",  # RudderStack's beacon, the write key in the query
)
# The visitor's side (footprint.services.onsite), also TrackFunction's.
BROWSER_ROUTES = {
    ("GET", "/footprint.js"),
    ("GET", "/footprint-ui.js"),
    ("GET", "/footprint-sw.js"),
    ("GET", "/v1/projects/{writeKey}/settings"),
    ("POST", "/v1/onsite"),
    ("POST", "/v1/onsite/ack"),
}
# The public routes behind the links of every email (EmailLinksFunction).
EMAIL_ROUTES = {
    ("GET", "/v1/email/unsubscribe"),
    ("POST", "/v1/email/unsubscribe"),
    ("GET", "/v1/email/click"),
}
ADMIN_ROUTES = {
    ("GET", "/admin/journeys"),
    ("POST", "/admin/journeys"),
    ("POST", "/admin/journeys/validate"),
    ("POST", "/admin/journeys/simulate"),
    ("POST", "/admin/journeys/{journey_id}/pause"),
    ("POST", "/admin/journeys/{journey_id}/resume"),
    ("GET", "/admin/journeys/{journey_id}/report"),
    ("GET", "/admin/sources"),
    ("POST", "/admin/sources"),
    ("POST", "/admin/sources/keys/{key_id}/rotate"),
    ("POST", "/admin/sources/keys/{key_id}/revoke"),
    ("PUT", "/admin/sources/keys/{key_id}/origins"),
    ("POST", "/admin/people/export"),
    ("POST", "/admin/people/delete"),
    ("POST", "/admin/messages"),
}
