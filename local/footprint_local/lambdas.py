"""The stack's Lambda functions: the real handler modules, imported and called in-process.

A function is imported lazily from its CodeUri directory, so the stack starts even while a handler
is still being written; until the module exists the function reports itself missing and the pumps
that feed it wait (the events stay in their stream or queue).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
FunctionState = Literal["ready", "missing", "broken"]

# Imports may set environment variables of one function for the duration of the import.
_import_lock = threading.Lock()


class HandlerUnavailableError(RuntimeError):
    """The handler module does not exist yet, or fails to import."""


@dataclass(frozen=True)
class Invocation:
    """What the Lambda service gets back from one invoke."""

    payload: Any = None
    # Set when the handler raised or returned something that is not JSON (a "function error").
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


class FakeLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaFunction:
    """One function of the template, run as a single warm container (one invoke at a time)."""

    # How often a missing or broken handler module is looked for again.
    RETRY_IMPORT_SECONDS = 2.0

    def __init__(
        self,
        *,
        logical_id: str,
        physical_name: str,
        arn: str,
        code_dir: Path,
        handler: str,
        timeout_seconds: int = 30,
        memory_mb: int = 128,
        import_environment: dict[str, str] | None = None,
    ) -> None:
        self.logical_id = logical_id
        self.physical_name = physical_name
        self.arn = arn
        self.code_dir = code_dir
        self.handler_path = handler
        self.module_name, _, self.attribute_name = handler.rpartition(".")
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self._import_environment = dict(import_environment or {})
        self._handler: Handler | None = None
        self._override: Handler | None = None
        self._state: FunctionState = "missing"
        self._last_attempt = float("-inf")
        self._last_problem = ""
        # A Lambda container runs one invocation at a time; handlers may rely on that.
        self._invoke_lock = threading.Lock()
        self._resolve_lock = threading.Lock()
        # The module object that was in sys.modules before this function's cold start, put back by unload().
        self._displaced_module: Any = None
        self._loaded = False

    @property
    def module_file(self) -> Path:
        return self.code_dir / (self.module_name.replace(".", "/") + ".py")

    @property
    def state(self) -> FunctionState:
        self._resolve()
        return "ready" if self._override is not None else self._state

    def ready(self) -> bool:
        return self.state == "ready"

    def describe(self) -> str:
        """For logs and the local page: what is (not) there."""
        state = self.state
        if state == "ready":
            return "ready" if self._override is None else "ready (overridden)"
        if state == "missing":
            return f"missing: {self.module_file.name} not written yet"
        return f"broken: {self._last_problem}"

    @contextmanager
    def override(self, handler: Handler) -> Iterator[None]:
        """Run ``handler`` instead of the module's (tests: stubs, fault injection)."""
        with self._invoke_lock:
            previous, self._override = self._override, handler
        try:
            yield
        finally:
            with self._invoke_lock:
                self._override = previous

    def invoke(self, event: Any) -> Invocation:
        """Invoke like the Lambda service: the event and the result cross a JSON boundary."""
        wire_event = json.loads(json.dumps(event))
        with self._invoke_lock:
            handler = self._override or self._resolve()
            if handler is None:
                raise HandlerUnavailableError(f"{self.logical_id} is {self.describe()}")
            context = FakeLambdaContext(self.physical_name, self.arn, self.memory_mb, self.timeout_seconds)
            try:
                result = handler(wire_event, context)
            except Exception as error:
                logger.error(
                    "%s raised %s: %s\n%s",
                    self.logical_id,
                    type(error).__name__,
                    error,
                    "".join(traceback.format_exception(error)).rstrip(),
                )
                return Invocation(error=f"{type(error).__name__}: {error}")
        try:
            return Invocation(payload=json.loads(json.dumps(result)))
        except (TypeError, ValueError) as error:
            logger.error("%s returned a value that is not JSON: %s", self.logical_id, error)
            return Invocation(error=f"Runtime.MarshalError: {error}")

    def _resolve(self) -> Handler | None:
        """The handler, importing its module on first use (and again later while it is missing)."""
        if self._handler is not None:
            return self._handler
        with self._resolve_lock:
            if self._handler is not None:
                return self._handler
            if time.monotonic() - self._last_attempt < self.RETRY_IMPORT_SECONDS:
                return None
            self._last_attempt = time.monotonic()
            self._handler = self._import()
            return self._handler

    def _import(self) -> Handler | None:
        code_dir = str(self.code_dir)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
        importlib.invalidate_caches()
        try:
            with _import_lock, _environment_overlay(self._import_environment):
                if not self._loaded:
                    # A cold start: a fresh module, whatever an earlier stack or test cached in it.
                    self._displaced_module = sys.modules.pop(self.module_name, None)
                    self._loaded = True
                module = importlib.import_module(self.module_name)
            handler = getattr(module, self.attribute_name)
        except ModuleNotFoundError as error:
            if error.name == self.module_name:
                self._set_problem("missing", f"{self.module_file} not found")
                return None
            self._set_problem("broken", f"{type(error).__name__}: {error}", error)
            return None
        except Exception as error:
            self._set_problem("broken", f"{type(error).__name__}: {error}", error)
            return None
        if not callable(handler):
            self._set_problem("broken", f"{self.handler_path} is not callable")
            return None
        if self._state != "ready":
            logger.info("%s ready (%s)", self.logical_id, self.handler_path)
        self._state = "ready"
        return handler

    def unload(self) -> None:
        """Forget this function's module (its caches hold the stopped stack's clients)."""
        with _import_lock:
            if not self._loaded:
                return
            sys.modules.pop(self.module_name, None)
            if self._displaced_module is not None:
                sys.modules[self.module_name] = self._displaced_module
            self._loaded = False
            self._handler = None

    def _set_problem(self, state: FunctionState, problem: str, error: BaseException | None = None) -> None:
        # Log each distinct problem once; the pumps keep retrying quietly.
        if problem != self._last_problem:
            if state == "missing":
                logger.warning("%s not available yet (%s); its event sources wait", self.logical_id, problem)
            else:
                details = "".join(traceback.format_exception(error)).rstrip() if error else ""
                logger.error("%s cannot be imported: %s\n%s", self.logical_id, problem, details)
        self._state = state
        self._last_problem = problem


@contextmanager
def _environment_overlay(values: dict[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
