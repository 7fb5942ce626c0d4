"""footprint.js stays small: every client page downloads it (the budget the README promises)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "layers" / "shared" / "footprint" / "web"
# 5 KiB gzipped, as served (the file itself: no build step, no minifier).
SCRIPT_BUDGET_BYTES = 5 * 1024


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def test_footprint_js_is_at_most_5_kib_gzipped(capsys: pytest.CaptureFixture[str]) -> None:
    script = WEB / "footprint.js"
    size = gzipped_size(script)
    with capsys.disabled():
        print(
            f"\nfootprint.js: {script.stat().st_size} bytes, {size} bytes gzipped "
            f"(budget {SCRIPT_BUDGET_BYTES}); footprint-sw.js: {gzipped_size(WEB / 'footprint-sw.js')} bytes gzipped"
        )
    assert size <= SCRIPT_BUDGET_BYTES


def test_the_scripts_need_nothing_else() -> None:
    """Dependency-free: no module syntax a plain <script> or importScripts cannot run, no third-party host."""
    for name in ("footprint.js", "footprint-sw.js"):
        text = (WEB / name).read_text(encoding="utf-8")
        assert "import " not in text.replace("importScripts", "")
        assert "require(" not in text
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text
