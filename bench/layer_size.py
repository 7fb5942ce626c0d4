"""The size of what SharedLayer ships, unzipped, against Lambda's limit (250 MB for a function and all its
layers, unzipped).

``sam build`` puts into the layer the footprint package (layers/shared/footprint) and what pip installs
for layers/shared/requirements.txt: those distributions and their dependencies, with the extras named.
Measured offline from this interpreter's installed distributions (the files each one's RECORD lists,
bytecode included, as pip installs it): an estimate, since the layer is built for python3.13 on arm64
and compiled wheels (pydantic-core, cryptography, ...) differ a little by platform and version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "shared"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # bytes: a function's code and all its layers, unzipped
MB = 1024 * 1024


@dataclass(frozen=True)
class LayerSize:
    package_bytes: int  # the footprint package
    distributions: dict[str, int]  # installed distribution -> bytes of its files
    missing: tuple[str, ...]  # requirements not installed here (not counted)

    @property
    def total(self) -> int:
        return self.package_bytes + sum(self.distributions.values())

    @property
    def share_of_limit(self) -> float:
        return self.total / LAMBDA_UNZIPPED_LIMIT


def requirements(path: Path = LAYER / "requirements.txt") -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[Requirement]) -> tuple[dict[str, metadata.Distribution], tuple[str, ...]]:
    """Every distribution pip would install for ``roots`` (markers evaluated here, extras followed)."""
    found: dict[str, metadata.Distribution] = {}
    missing: list[str] = []
    pending = [(requirement, frozenset(requirement.extras)) for requirement in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, extras = pending.pop()
        key = (_canonical(requirement.name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(requirement.name)
            continue
        found[_canonical(distribution.metadata["Name"])] = distribution
        for line in distribution.requires or []:
            dependency = Requirement(line)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
                pending.append((dependency, frozenset(dependency.extras)))
    return found, tuple(sorted(set(missing)))


def distribution_bytes(distribution: metadata.Distribution) -> int:
    total = 0
    for file in distribution.files or []:
        located = Path(str(distribution.locate_file(file)))
        if located.is_file():
            total += located.stat().st_size
    return total


def package_bytes(package: Path = LAYER / "footprint") -> int:
    """The package's files as the repository holds them (bytecode caches left out: pip compiles those)."""
    return sum(path.stat().st_size for path in package.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


def run() -> LayerSize:
    found, missing = closure(requirements())
    sizes = {name: distribution_bytes(distribution) for name, distribution in found.items()}
    return LayerSize(package_bytes=package_bytes(), distributions=sizes, missing=missing)


def report(result: LayerSize, top: int = 8) -> str:
    largest = sorted(result.distributions.items(), key=lambda item: item[1], reverse=True)[:top]
    lines = [
        "## Layer size (SharedLayer, unzipped)",
        "",
        f"The footprint package and the {len(result.distributions)} distributions pip installs for "
        "layers/shared/requirements.txt, measured from this interpreter's installed files (an estimate: the "
        "layer is built for python3.13 on arm64).",
        "",
        f"- total: **{result.total / MB:.1f} MB** of Lambda's 250 MB unzipped limit "
        f"({100 * result.share_of_limit:.0f} %), the function's own code being a few KB",
        f"- the footprint package: {result.package_bytes / MB:.2f} MB",
        "- largest: " + ", ".join(f"{name} {size / MB:.1f} MB" for name, size in largest),
    ]
    if result.missing:
        lines.append(f"- not installed here, not counted: {', '.join(result.missing)}")
    return "\n".join(lines)
