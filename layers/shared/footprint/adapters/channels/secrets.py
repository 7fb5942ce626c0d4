"""Channel credentials from AWS Secrets Manager, through Powertools Parameters (cached per container)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import (
    GetParameterError,
    SecretsProvider,
    TransformParameterError,
)
from botocore.exceptions import ClientError

from footprint.services.retries import RetryableDeliveryError

# A rotated secret reaches warm containers within this many seconds.
DEFAULT_MAX_AGE_SECONDS = 300


class SecretNotFoundError(RetryableDeliveryError):
    """No secret of that name. Retried like any unreadable secret where the stack names it (a deployment
    to fix); a permanent failure where a journey names it (footprint.adapters.channels.webhook)."""


def _not_found(error: GetParameterError) -> bool:
    # Powertools raises GetParameterError inside its ``except``, so the client's error is its context.
    cause = error.__cause__ or error.__context__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class SecretKey:
    """A secret whose whole value is a key (the stack's EmailLinkSecret), as bytes."""

    def __init__(self, provider: SecretsProvider, name: str, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> None:
        self.provider = provider
        self.name = name
        self.max_age = max_age

    def __call__(self) -> bytes:
        try:
            value = self.provider.get(self.name, max_age=self.max_age)
        except GetParameterError as error:
            raise RetryableDeliveryError(f"secret {self.name!r} unreadable: {error}") from error
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str) or len(value) < 16:
            raise RetryableDeliveryError(f"secret {self.name!r} is not a key of at least 16 characters")
        return value.encode()


class SecretJson:
    """One JSON secret, read on first use and re-read after ``max_age`` seconds."""

    def __init__(self, provider: SecretsProvider, name: str, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> None:
        self.provider = provider
        self.name = name
        self.max_age = max_age

    def __call__(self) -> dict[str, Any]:
        try:
            value = self.provider.get(self.name, max_age=self.max_age, transform="json")
        except (GetParameterError, TransformParameterError) as error:
            # Missing, unreadable or not JSON: a deployment problem. Retrying keeps the messages (then
            # in the dead-letter queue, ready to redrive) until someone fixes it.
            if isinstance(error, GetParameterError) and _not_found(error):
                raise SecretNotFoundError(f"secret {self.name!r} not found") from error
            raise RetryableDeliveryError(f"secret {self.name!r} unreadable: {error}") from error
        if not isinstance(value, dict):
            raise RetryableDeliveryError(f"secret {self.name!r} is not a JSON object")
        return value
