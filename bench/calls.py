"""Counting AWS API calls with botocore's event hooks, and estimating DynamoDB capacity units from them.

botocore copies ``botocore.handlers.BUILTIN_HANDLERS`` into every session it creates, so a handler
appended there sees the calls of every client created afterwards: ``boto3.client(...)`` (the
default session), ``boto3.resource(...)`` and the fresh ``boto3.Session()`` that Powertools'
Parameters providers build for themselves. (moto's in-process mock hooks botocore the same way.)
Two events per call:

- ``provide-client-params.<service>.<Operation>``: once per API call, before any retry, with the
  call's parameters;
- ``after-call.<service>.<Operation>``: with the parsed response (errors included), for read sizes
  and error codes.

Only calls made on a thread inside ``CallCounter.recording()`` are kept, so the local stack's own
machinery (pumps polling queues and streams, provisioning) is never counted, only the handlers'.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import handlers

_RECORDING = "bench.calls"  # where a call's list travels between its two events (the request context)
_PARAMS = "bench.params"
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


@dataclass(frozen=True)
class ApiCall:
    """One API call as billed: the operation, DynamoDB capacity units (estimated), and its error code."""

    operation: str  # "dynamodb.TransactWriteItems"
    write_units: float = 0.0
    read_units: float = 0.0
    error: str | None = None


def by_operation(calls: Iterable[ApiCall]) -> Counter[str]:
    return Counter(call.operation for call in calls)


class CallCounter:
    """Install before the clients are created (``install()`` also drops boto3's default session)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._sizes = ItemSizes()
        self._specs = [("provide-client-params", self._on_params), ("after-call", self._on_response)]
        self.installed = False

    def install(self) -> None:
        if not self.installed:
            handlers.BUILTIN_HANDLERS.extend(self._specs)
            # A default session created earlier would not have the hooks; boto3 builds a new one on demand.
            boto3.DEFAULT_SESSION = None
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            for spec in self._specs:
                handlers.BUILTIN_HANDLERS.remove(spec)
            boto3.DEFAULT_SESSION = None
            self.installed = False

    def __enter__(self) -> CallCounter:
        self.install()
        return self

    def __exit__(self, *_: object) -> None:
        self.uninstall()

    @contextmanager
    def recording(self) -> Iterator[list[ApiCall]]:
        """Collect the calls this thread makes inside the block."""
        calls: list[ApiCall] = []
        previous = getattr(self._local, "calls", None)
        self._local.calls = calls
        try:
            yield calls
        finally:
            self._local.calls = previous

    def _on_params(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        calls = getattr(self._local, "calls", None)
        if calls is not None:
            context[_RECORDING] = calls
            context[_PARAMS] = params
        # None: the parameters go on unchanged.

    def _on_response(self, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **kwargs: Any) -> None:
        calls: list[ApiCall] | None = context.get(_RECORDING)
        if calls is None:
            return
        http = kwargs.get("http_response")
        failed = http is not None and http.status_code >= 300
        error = str(parsed.get("Error", {}).get("Code") or "error") if failed else None
        service = model.service_model.service_id.hyphenize()
        write_units = read_units = 0.0
        if service == "dynamodb":
            write_units, read_units = self._sizes.units(model.name, context.get(_PARAMS) or {}, parsed, failed)
        calls.append(ApiCall(f"{service}.{model.name}", write_units, read_units, error))


# ------------------------------------------------------------------------------------ DynamoDB units


def attribute_size(value: Any) -> int:
    """Bytes of one attribute value as DynamoDB counts them (low-level ``{"S": ...}`` or plain Python)."""
    if isinstance(value, Mapping) and len(value) == 1:
        kind, inner = next(iter(value.items()))
        match kind:
            case "S":
                return len(str(inner).encode())
            case "N":
                return len(str(inner).lstrip("-").replace(".", "")) // 2 + 2
            case "B":
                return len(inner) if isinstance(inner, bytes | bytearray) else len(str(inner)) * 3 // 4
            case "BOOL" | "NULL":
                return 1
            case "SS" | "NS" | "BS":
                return sum(attribute_size({kind[0]: item}) for item in inner)
            case "M":
                return 3 + item_size(inner) + len(inner)
            case "L":
                return 3 + sum(attribute_size(item) + 1 for item in inner)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        return len(str(value)) // 2 + 2
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + item_size(value) + len(value)
    if isinstance(value, list | tuple | set):
        return 3 + sum(attribute_size(item) + 1 for item in value)
    return len(str(value).encode())


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> float:
    return float(max(1, math.ceil(size / WRITE_UNIT_BYTES)))


def read_units(size: int, consistent: bool) -> float:
    units = float(max(1, math.ceil(size / READ_UNIT_BYTES)))
    return units if consistent else units / 2


def _key_of(table: str, item: Mapping[str, Any]) -> tuple[str, ...]:
    """The key of an item in Footprint's tables (``pk``/``sk``, or ``id`` for ConfigTable and idempotency)."""
    return (table, *(f"{name}={item[name]}" for name in ("id", "pk", "sk") if name in item))


class ItemSizes:
    """Remembers the size of items written, because an update or delete is billed by the item's size."""

    def __init__(self) -> None:
        self._sizes: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def known(self, table: str, key: Mapping[str, Any]) -> int:
        with self._lock:
            return self._sizes.get(_key_of(table, key), 0)

    def wrote(self, table: str, item: Mapping[str, Any]) -> int:
        size = item_size(item)
        with self._lock:
            self._sizes[_key_of(table, item)] = size
        return size

    def units(
        self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any], failed: bool
    ) -> tuple[float, float]:
        """(write units, read units) of one DynamoDB call; a failed conditional write is billed too."""
        table = str(params.get("TableName", ""))
        consistent = bool(params.get("ConsistentRead"))
        match operation:
            case "PutItem":
                item = params.get("Item") or {}
                size = item_size(item) if failed else self.wrote(table, item)
                return write_units(size), 0.0
            case "UpdateItem" | "DeleteItem":
                return write_units(self.known(table, params.get("Key") or {})), 0.0
            case "BatchWriteItem":
                total = 0.0
                for name, requests in (params.get("RequestItems") or {}).items():
                    for request in requests:
                        if "PutRequest" in request:
                            total += write_units(self.wrote(name, request["PutRequest"]["Item"]))
                        else:
                            total += write_units(self.known(name, request["DeleteRequest"]["Key"]))
                return total, 0.0
            case "TransactWriteItems":
                total = 0.0
                for action in params.get("TransactItems") or []:
                    (kind, detail), *_ = action.items()
                    if kind == "Put":
                        size = item_size(detail["Item"]) if failed else self.wrote(detail["TableName"], detail["Item"])
                    else:
                        size = self.known(detail["TableName"], detail.get("Key") or {})
                    total += 2 * write_units(size)  # transactions bill two units per 1 KB
                return total, 0.0
            case "GetItem":
                return 0.0, read_units(item_size(parsed.get("Item") or {}), consistent)
            case "BatchGetItem":
                total = 0.0
                for name, request in (params.get("RequestItems") or {}).items():
                    found = parsed.get("Responses", {}).get(name, [])
                    strong = bool(request.get("ConsistentRead"))
                    total += sum(read_units(item_size(item), strong) for item in found)
                    # Keys that found nothing still cost the minimum.
                    total += max(0, len(request.get("Keys", [])) - len(found)) * read_units(0, strong)
                return 0.0, total
            case "Query" | "Scan":
                size = sum(item_size(item) for item in parsed.get("Items") or [])
                return 0.0, read_units(size, consistent)
            case "TransactGetItems":
                return 0.0, 2 * sum(
                    read_units(item_size(r.get("Item") or {}), True) for r in parsed.get("Responses", [])
                )
        return 0.0, 0.0
