"""Shared fixtures of the engine's tests: generated RRSIS-D sets (recipes: ``_fixtures.recipe``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthetic_rrsisd(tmp_path_factory):
    """``make(n)`` → the root of an RRSIS-D-layout set of ``n`` generated 64-px scenes (seed 3),
    generated once per ``n`` for the whole session."""
    made: dict[int, str] = {}

    def make(n: int) -> str:
        if n not in made:
            from rrsis.data.synthetic import generate

            out = tmp_path_factory.mktemp(f"synthetic{n}")
            generate(str(out), n, seed=3, size=64, layout="rrsisd")
            made[n] = str(out / "rrsisd")
        return made[n]

    return make
