"""Handlers are traced with X-Ray only when the stack's Tracing parameter is Active (footprint.tracing).

The import-graph checks run each in a fresh interpreter: whether Powertools' Tracer (and with it the X-Ray
SDK, about as long to load as boto3) is loaded is decided at the first invocation, never at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from footprint import tracing

ROOT = Path(__file__).resolve().parents[2]

# Invokes evaluate's real handler with an empty batch (it answers before any AWS call) and reports whether the
# X-Ray SDK was loaded by the import and by the invocation.
INVOKE_EVALUATE = """
import sys
import evaluate_handler
from tests.lambda_context import lambda_context
imported = "aws_xray_sdk" in sys.modules
answer = evaluate_handler.handler({"Records": []}, lambda_context("evaluate"))
assert answer == {"batchItemFailures": []}, answer
print(imported, "aws_xray_sdk" in sys.modules)
"""


def fresh_interpreter(code: str, **environment: str) -> str:
    """Run ``code`` in a new interpreter that sees this checkout, with no stack settings in its environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POWERTOOLS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "functions" / "evaluate"), str(ROOT), *(path for path in sys.path if path)]
    )
    env |= {"POWERTOOLS_SERVICE_NAME": "footprint", "POWERTOOLS_METRICS_NAMESPACE": "Footprint", **environment}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("value", "enabled"), [(None, True), ("false", True), ("0", True), ("true", False), ("1", False)]
)
def test_tracing_is_on_unless_powertools_is_told_it_is_disabled(
    monkeypatch: pytest.MonkeyPatch, value: str | None, enabled: bool
) -> None:
    if value is None:
        monkeypatch.delenv(tracing.TRACE_DISABLED_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(tracing.TRACE_DISABLED_VARIABLE, value)

    assert tracing.tracing_enabled() is enabled


def test_the_choice_is_made_at_the_first_invocation_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[str] = []

    def capture(handler: Any) -> Any:
        captured.append(handler.__name__)
        return lambda event, context: ("traced", handler(event, context))

    monkeypatch.setattr(tracing, "_captured", capture)

    def handler(event: dict[str, Any], context: object) -> str:
        return f"handled {event['n']}"

    monkeypatch.setenv(tracing.TRACE_DISABLED_VARIABLE, "true")
    wrapped = tracing.traced(handler)
    monkeypatch.setenv(tracing.TRACE_DISABLED_VARIABLE, "false")  # read at the first call, not at decoration

    assert wrapped({"n": 1}, None) == ("traced", "handled 1")
    monkeypatch.setenv(tracing.TRACE_DISABLED_VARIABLE, "true")
    assert wrapped({"n": 2}, None) == ("traced", "handled 2")  # one execution environment, one choice
    assert captured == ["handler"]
    assert wrapped.__name__ == "handler"


def test_with_tracing_off_a_handler_runs_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_captured", lambda handler: pytest.fail("the Tracer was created"))
    monkeypatch.setenv(tracing.TRACE_DISABLED_VARIABLE, "true")

    assert tracing.traced(lambda event, context: event["n"] + 1)({"n": 1}, None) == 2


def test_with_tracing_off_the_x_ray_sdk_is_never_loaded() -> None:
    assert fresh_interpreter(INVOKE_EVALUATE, POWERTOOLS_TRACE_DISABLED="true") == "False False"


def test_with_tracing_on_the_first_invocation_runs_under_powertools_tracer() -> None:
    # Outside Lambda Powertools' Tracer records nothing, but it is created (and loads X-Ray) as in Lambda.
    assert fresh_interpreter(INVOKE_EVALUATE, POWERTOOLS_TRACE_DISABLED="false") == "False True"
