"""footprint.js stays small: every client page downloads it (the budget the README promises)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "layers" / "shared" / "footprint" / "web"
# 5 KiB gzipped, as served (the file itself: no build step, no minifier).
SCRIPT_BUDGET_BYTES = 5 * 1024
# The onsite renderer, loaded only when a message is due: page views that show nothing never pay for it.
RENDERER_BUDGET_BYTES = 3 * 1024
SCRIPTS = ("footprint.js", "footprint-ui.js", "footprint-sw.js")


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def test_footprint_js_is_at_most_5_kib_gzipped_and_its_renderer_3_kib(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = {name: gzipped_size(WEB / name) for name in SCRIPTS}
    with capsys.disabled():
        described = (f"{n}: {(WEB / n).stat().st_size} bytes, {size} bytes gzipped" for n, size in sizes.items())
        print("\n" + "; ".join(described) + f" (budgets {SCRIPT_BUDGET_BYTES} and {RENDERER_BUDGET_BYTES})")
    assert sizes["footprint.js"] <= SCRIPT_BUDGET_BYTES
    assert sizes["footprint-ui.js"] <= RENDERER_BUDGET_BYTES


def test_the_scripts_need_nothing_else() -> None:
    """Dependency-free: no module syntax a plain <script> or importScripts cannot run, no third-party host."""
    for name in SCRIPTS:
        text = (WEB / name).read_text(encoding="utf-8")
        assert "import " not in text.replace("importScripts", "")
        assert "require(" not in text
        for sink in ("innerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in text, f"{name} uses {sink}"


def test_the_demo_shop_pastes_the_readme_s_snippet() -> None:
    """The demo is a client site: its pages carry the snippet the README tells sites to paste."""
    readme = (WEB.parents[3] / "README.md").read_text(encoding="utf-8")
    [snippet] = [line for line in readme.splitlines() if line.startswith("!function(w,d,u)")]
    stub = snippet.split("}(window,document,")[0]  # the host differs: the demo may send to another origin
    pages = sorted((WEB.parents[3] / "local" / "footprint_local" / "demo").glob("*.html"))
    assert len(pages) >= 6  # home, three products, cart, checkout
    for page in pages:
        assert stub in page.read_text(encoding="utf-8"), page.name
