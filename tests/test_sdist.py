"""The sdist holds every file of the repository that the README's test command and the docs
build read (MANIFEST.in), so ``python -m pytest`` and ``mkdocs build`` run from an unpacked sdist;
the wheel holds the package alone. Built with setuptools' own backend from a copy of the files
git tracks (no network, no build isolation); skipped outside a git checkout (an unpacked sdist)."""

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# One process a build: setuptools' backend keeps state between two builds of one process.
BUILD = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
# Files git tracks that an sdist need not carry: git's own settings.
NOT_SHIPPED = {".gitignore"}


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (an unpacked sdist): nothing to compare MANIFEST.in with")
    out = subprocess.run(["git", "ls-files", "-z", "--cached"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    return sorted(f for f in out.split("\0") if f and (REPO / f).is_file())


def test_sdist_holds_the_tests_and_docs_and_the_wheel_only_the_package(tmp_path):
    pytest.importorskip("setuptools")
    files = _tracked()
    src = tmp_path / "src"
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, src / f)
    dist = tmp_path / "dist"
    dist.mkdir()
    names = []
    for hook in ("build_sdist", "build_wheel"):
        done = subprocess.run([sys.executable, "-c", BUILD, hook, str(dist)], cwd=src, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        names.append(done.stdout.split()[-1])
    sdist_name, wheel_name = names
    with tarfile.open(dist / sdist_name) as tar:
        top = tar.getnames()[0].split("/")[0]
        shipped = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in files if f not in shipped and f not in NOT_SHIPPED]
    assert not missing, f"files the sdist lacks (add them to MANIFEST.in): {missing[:20]}"
    assert {"tests/conftest.py", "tests/_fixtures.py", "mkdocs.yml", "CHANGELOG.md"} <= shipped and top
    assert not [n for n in shipped if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    with zipfile.ZipFile(dist / wheel_name) as whl:
        tops = {n.split("/")[0] for n in whl.namelist()}
    assert tops == {"rrsis", wheel_name.split("-py3")[0] + ".dist-info"}, tops


def test_python_classifiers_start_at_requires_python():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    floor = project["requires-python"].removeprefix(">=")
    versions = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")]
    assert versions and versions[0] == floor, (floor, versions)
    assert [tuple(map(int, v.split("."))) for v in versions] == \
        [(3, n) for n in range(int(floor.split(".")[1]), int(floor.split(".")[1]) + len(versions))]
