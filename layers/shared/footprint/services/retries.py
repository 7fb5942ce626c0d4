"""When a delivery is tried again: the error a channel raises when a message may pass later, and how long
SQS keeps it hidden before the next attempt. Stdlib only: the send and email links handlers use them at
import, before their services load.
"""

from __future__ import annotations


class RetryableDeliveryError(Exception):
    """The channel may accept the message later (network error, 5xx, throttling): SQS retries it,
    not before ``retry_after_seconds`` when the provider said so (HTTP ``Retry-After``)."""

    def __init__(self, detail: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


# Retries back off exponentially from the first (SendQueue's maxReceiveCount of 5 spreads them over
# about 7.5 minutes); a provider's Retry-After wins when it asks for longer, up to SQS's 12 hours.
FIRST_RETRY_SECONDS = 30
MAX_BACKOFF_SECONDS = 900
MAX_RETRY_AFTER_SECONDS = 12 * 3600


def retry_delay_seconds(receive_count: int, retry_after_seconds: int | None = None) -> int:
    """How long a message that may pass later stays hidden before its next attempt."""
    backoff = min(MAX_BACKOFF_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, receive_count - 1))
    return min(MAX_RETRY_AFTER_SECONDS, max(backoff, retry_after_seconds or 0))
