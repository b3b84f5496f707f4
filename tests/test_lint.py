"""`ruff check .` stays clean: the rule set pinned in pyproject.toml, over the whole repository.

ruff comes with the dev extra, so CI runs this; a plain install without ruff skips it.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

def _ruff() -> list[str]:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    beside = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if beside is None:
        pytest.skip('ruff is not installed (pip install -e ".[dev]" brings it)')
    return [beside]


def _check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # --no-cache: a test run leaves no .ruff_cache behind in the checkout.
    return subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", *args],
                          cwd=REPO, input=stdin, capture_output=True, text=True, timeout=60)


def test_the_repository_has_no_ruff_findings():
    run = _check(".")
    findings = [line for line in run.stdout.splitlines() if re.match(r"\S+:\d+:\d+: ", line)]
    assert run.returncode == 0, (
        f"ruff check . reports {len(findings)} finding(s); `ruff check --fix .` mends the ones "
        "marked [*]:\n" + run.stdout + run.stderr)


@pytest.mark.parametrize("source, code", [
    ("import os\n", "F401"),                                        # pyflakes
    ("from typing import Optional\n\nx: Optional[int] = None\n", "UP045"),  # py310 spelling
    ("import sys\nimport os\n\nprint(os, sys)\n", "I001"),              # import order
    ('names = ["a" "b", "c"]\n', "ISC001"),                          # a missing comma
    ("try:\n    pass\nexcept Exception:\n    pass\n", "BLE001"),          # a silent broad except
])
def test_the_pinned_rules_report_their_findings(source, code):
    """The configuration is read (not ruff's changing defaults) and a finding fails the check."""
    run = _check("--stdin-filename", "rrsis/_lint_probe.py", "-", stdin=source)
    assert run.returncode == 1 and f" {code} " in run.stdout, run.stdout + run.stderr


def test_ignored_rules_stay_quiet():
    # The ×, − and ² of shapes and units are meant (RUF001-003), zip() needs no strict= (B905).
    source = 'def f(a, b):\n    """A [B, C, H, W] map, 480×480 px²."""\n    return list(zip(a, b))\n'
    run = _check("--stdin-filename", "rrsis/_lint_probe.py", "-", stdin=source)
    assert run.returncode == 0, run.stdout + run.stderr
