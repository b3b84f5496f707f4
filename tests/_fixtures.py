"""Where the official-format reference fixtures live.

Looked up in this order: ``$RRSIS_FIXTURES``, then ``../shared/fixtures`` relative to the
repository (a checkout with ``shared/`` beside it, as on the development machines and in CI).
Tests that need them skip when they are missing, except under ``CI=true``, where a missing
fixture set is an error: a CI run that skipped every parity test would pass without testing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"  # small files the tests read (saved models, legacy configs, cards)
_MARKER = Path("lavt") / "checkpoint.pth"


def _in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_fixtures(environ: Mapping[str, str] | None = None, repo: Path | None = None) -> Path:
    """The fixture folder (possibly missing outside CI; tests then skip).

    Args:
        environ: the environment to read (default ``os.environ``).
        repo: the repository root (default: this checkout).

    Raises:
        RuntimeError: under ``CI=true`` when no candidate holds the fixtures.
    """
    environ = os.environ if environ is None else environ
    repo = REPO if repo is None else Path(repo)
    candidates = [Path(p) for p in [environ.get("RRSIS_FIXTURES", "")] if p]
    candidates.append(repo.parent / "shared" / "fixtures")
    for c in candidates:
        if (c / _MARKER).exists():
            return c
    if _in_ci(environ):
        tried = ", ".join(str(c) for c in candidates)
        raise RuntimeError(
            f"CI=true but the reference fixtures are missing (looked in {tried}): set "
            "RRSIS_FIXTURES to the fixture folder, or check out shared/ beside the repository"
        )
    return candidates[-1]


FIXTURES = find_fixtures()
