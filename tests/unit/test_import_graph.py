"""What a cold start loads: each check runs in a fresh interpreter and looks at ``sys.modules``.

Import-graph checks, not timings (docs/benchmarks.md has the figures): a handler's import loads no
settings, no X-Ray SDK (tracing is off by default) and none of the channel libraries; send's service
loads pywebpush (and the aiohttp it imports at module level) only when a web push is actually sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cold_start import SETTINGS_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(path.name for path in (ROOT / "functions").iterdir() if path.is_dir())
# The settings the template gives every function, as placeholders (nothing here calls AWS): the bench's.
STACK_SETTINGS = SETTINGS_ENVIRONMENT
WEB_PUSH_STACK = ("pywebpush", "py_vapid", "http_ece", "aiohttp")


def loaded_after(code: str, **environment: str) -> set[str]:
    """The top-level and footprint modules loaded once ``code`` has run in a new interpreter."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("POWERTOOLS_") and name not in STACK_SETTINGS
    }
    paths = [str(ROOT / "functions" / handler) for handler in HANDLERS]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT), *(path for path in sys.path if path)])
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true", **environment}
    report = "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    completed = subprocess.run(
        [sys.executable, "-c", code + report], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert completed.returncode == 0, completed.stderr
    names: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return {name for name in names if name.startswith("footprint") or "." not in name}


def test_importing_a_handler_reads_no_settings_and_loads_no_tracing_or_channel_library() -> None:
    # No stack settings in the environment at all: a handler that read them at import would fail here.
    loaded = loaded_after("".join(f"import {handler}_handler\n" for handler in HANDLERS))

    assert {f"{handler}_handler" for handler in HANDLERS} <= loaded
    assert "footprint.settings" not in loaded
    for library in ("aws_xray_sdk", *WEB_PUSH_STACK, "liquid", "yaml", "pydantic_settings"):
        assert library not in loaded, library


def test_send_loads_pywebpush_only_when_it_sends_a_web_push() -> None:
    service = "import send_handler\nfrom footprint.adapters import send_wiring\nsend_wiring.send_service()\n"
    built = loaded_after(service, **STACK_SETTINGS)
    pushing = loaded_after(
        service + 'send_wiring.send_service().channels["web_push"]\n',  # what the first web push looks up
        **STACK_SETTINGS,
    )

    for library in WEB_PUSH_STACK:
        assert library not in built, library
        assert library in pushing, library
    # Nor the email channel's MIME stack and SES client before the first email.
    assert "footprint.adapters.channels.email" not in built
    assert "aws_xray_sdk" not in built


def test_no_function_loads_the_x_ray_sdk_while_tracing_is_off() -> None:
    factories = {
        "footprint.adapters.wiring": ("ingest_service", "onsite_service", "evaluate_service", "journey_admin"),
        "footprint.adapters.email_wiring": ("email_link_service", "email_feedback_service"),
        "footprint.adapters.send_wiring": ("send_service",),
    }
    code = "".join(f"import {handler}_handler\n" for handler in HANDLERS) + "".join(
        f"import {module}\n" + "".join(f"{module}.{name}()\n" for name in names) for module, names in factories.items()
    )

    assert "aws_xray_sdk" not in loaded_after(code, **STACK_SETTINGS)
