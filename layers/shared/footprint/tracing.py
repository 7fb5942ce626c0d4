"""X-Ray tracing of a handler, only when the stack turns it on (the template's ``Tracing`` parameter).

Powertools' Tracer loads the X-Ray SDK when it is created, even when tracing is disabled: that costs
about as much as importing boto3 itself, on every cold start. So a handler is decorated with
:func:`traced` instead of ``Tracer().capture_lambda_handler``: at the first invocation (never at
import), ``POWERTOOLS_TRACE_DISABLED`` decides. Unset or false (the template sets it false when
``Tracing`` is Active), the handler runs under Powertools' ``capture_lambda_handler`` exactly as
before: a segment per invocation, the cold start annotated, AWS calls as subsegments (the Tracer
patches botocore when it is created, before the first client call of the invocation). True (the
template's default), the handler runs as it is, and neither the Tracer nor the X-Ray SDK is loaded.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.shared.functions import strtobool

TRACE_DISABLED_VARIABLE = "POWERTOOLS_TRACE_DISABLED"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled() -> bool:
    """Whether Powertools' Tracer would trace: POWERTOOLS_TRACE_DISABLED unset or false (read as Powertools
    reads it, so a value it refuses is refused here too)."""
    return not strtobool(os.environ.get(TRACE_DISABLED_VARIABLE, "false"))


def traced(handler: Handler) -> Handler:
    """``handler``, under Powertools' ``Tracer().capture_lambda_handler`` when tracing is enabled at its
    first invocation (the choice is kept for the life of the execution environment)."""
    chosen: Callable[..., Any] | None = None

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        nonlocal chosen
        if chosen is None:
            chosen = _captured(handler) if tracing_enabled() else handler
        return chosen(event, context)

    return cast(Handler, invoke)


def _captured(handler: Callable[..., Any]) -> Callable[..., Any]:
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(handler)
