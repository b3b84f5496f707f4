"""The reference fixtures are found without any machine-specific path; CI never skips them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _fixtures import find_fixtures

REPO = Path(__file__).resolve().parents[1]


def test_no_machine_specific_path_in_the_package_or_the_tests():
    pattern = re.compile("/" + "work/|/" + "home/[a-z]|/" + "Users/[A-Z]")
    hits = []
    for folder in ("rrsis", "tests"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".json", ".txt", ".md") and path.is_file():
                for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def _fake_fixtures(root: Path) -> Path:
    (root / "lavt").mkdir(parents=True)
    (root / "lavt" / "checkpoint.pth").write_bytes(b"x")
    return root


def test_fixtures_come_from_the_environment_or_beside_the_repo(tmp_path):
    env = _fake_fixtures(tmp_path / "env")
    assert find_fixtures(environ={"RRSIS_FIXTURES": str(env)}, repo=tmp_path / "nowhere" / "repo") == env
    beside = _fake_fixtures(tmp_path / "shared" / "fixtures")
    assert find_fixtures(environ={}, repo=tmp_path / "repo") == beside


def test_missing_fixtures_fail_in_ci_and_skip_elsewhere(tmp_path):
    repo = tmp_path / "repo"
    with pytest.raises(RuntimeError, match=r"CI.*RRSIS_FIXTURES"):
        find_fixtures(environ={"CI": "true"}, repo=repo)
    assert not (find_fixtures(environ={}, repo=repo) / "lavt").exists()
