"""Sources (write keys) from ConfigTable, through Powertools Parameters.

A source is the item ``id = "source/{write_key}"`` whose ``value`` is JSON
``{"source_id", "name", "allowed_origins", "limits"}``. Powertools' DynamoDBProvider caches each value for
``max_age_seconds`` in the warm Lambda, so the tracking API's normal path makes no read at all.
Unknown write keys are remembered for as long, so a client sending a wrong key (or someone trying
keys) costs one read per key and warm Lambda, not one per request.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.parameters import DynamoDBProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError

from footprint.models import keys
from footprint.models.segment import Source
from footprint.services.tracking import StoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource


class DynamoDBSourceDirectory:
    """The SourceDirectory port on ConfigTable."""

    # Bounded, so random keys cannot grow a warm Lambda's memory without limit.
    MAX_UNKNOWN_KEYS = 10_000

    def __init__(
        self,
        table_name: str,
        max_age_seconds: int,
        resource: DynamoDBServiceResource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_seconds = max_age_seconds
        self.provider = DynamoDBProvider(table_name=table_name, boto3_client=resource or boto3.resource("dynamodb"))
        self._monotonic = monotonic
        self._unknown: OrderedDict[str, float] = OrderedDict()  # write key -> when it was found missing

    def find_source(self, write_key: str) -> Source | None:
        if self._known_unknown(write_key):
            return None
        try:
            value: Any = self.provider.get(keys.source_parameter(write_key), max_age=self.max_age_seconds)
        except GetParameterError as error:
            # Powertools wraps every failure; a missing item surfaces as the KeyError of ["Item"].
            if isinstance(error.__context__, KeyError):
                self._remember_unknown(write_key)
                return None
            raise StoreUnavailableError("store_unavailable", "sources cannot be read; retry later") from error
        try:
            # The value is a JSON string (the documented layout); a map attribute is read as is.
            return Source.model_validate(json.loads(value) if isinstance(value, str | bytes) else value)
        except (ValueError, ValidationError) as error:
            # An operator's typo in ConfigTable: keep the events coming back (retry) until it is fixed.
            raise StoreUnavailableError(
                "source_misconfigured", "this source's configuration cannot be read; retry later"
            ) from error

    def _known_unknown(self, write_key: str) -> bool:
        found_missing_at = self._unknown.get(write_key)
        if found_missing_at is None:
            return False
        if self._monotonic() - found_missing_at < self.max_age_seconds:
            return True
        del self._unknown[write_key]  # look again: the key may have been created since
        return False

    def _remember_unknown(self, write_key: str) -> None:
        self._unknown[write_key] = self._monotonic()
        self._unknown.move_to_end(write_key)
        while len(self._unknown) > self.MAX_UNKNOWN_KEYS:
            self._unknown.popitem(last=False)
