"""Write the journey JSON Schema: ``python -m footprint.engine.schema journeys/schema.json``.

A unit test fails when the committed file differs from what the models produce.
"""

from __future__ import annotations

import sys
from pathlib import Path

from footprint.models.journey import render_journey_json_schema


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m footprint.engine.schema <path/to/schema.json>", file=sys.stderr)
        return 2
    Path(args[0]).write_text(render_journey_json_schema(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
