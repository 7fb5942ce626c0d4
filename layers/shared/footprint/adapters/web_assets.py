"""The files the tracking API serves to browsers (footprint/web: the script and its service worker).

They ship in the shared layer as package data; each is read once per warm Lambda.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SERVED_FILES = frozenset({"footprint.js", "footprint-ui.js", "footprint-sw.js"})


class PackagedWebAssets:
    """The WebAssets port (footprint.services.onsite) on the files inside the footprint package."""

    def __init__(self, directory: Path = WEB_DIR) -> None:
        self.directory = directory

    def read(self, name: str) -> bytes:
        if name not in SERVED_FILES:
            raise KeyError(name)
        return _read(self.directory / name)


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()
