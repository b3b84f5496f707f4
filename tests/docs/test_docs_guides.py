"""Every code block of the guides runs: Python blocks in one namespace per page, shell blocks in
bash with ``rrsis`` and ``python`` meaning this interpreter, all in a fresh folder per page.

A block is left out only when the line just before it (the page's own words, visible to the
reader) starts with ``*Not run in the test suite:`` and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from _fixtures import FIXTURES, REPO, find_fixtures

ROOT = REPO
DOCS = ROOT / "docs"
PAGES = [DOCS / "getting-started.md", *sorted((DOCS / "guides").glob("*.md"))]
NO_RUN = "*Not run in the test suite"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    lang: str
    code: str
    line: int
    skip_reason: str | None


def code_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with the reason a block is not run (if any)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        before = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        start, i = i, i + 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"line {start + 1}: unclosed code block")
        reason = before[len(NO_RUN):].lstrip(":").strip(" *") if before.startswith(NO_RUN) else None
        blocks.append(Block(m.group(1), "\n".join(body) + "\n", start + 1, reason))
        i += 1
    return blocks


def test_code_blocks_parses_fences_and_reasons():
    page = "text\n\n```python\nx = 1\n```\n\n*Not run in the test suite: needs a GPU.*\n\n```bash\nnvidia-smi\n```\n"
    blocks = code_blocks(page)
    assert [(b.lang, b.code, b.line, b.skip_reason) for b in blocks] == [
        ("python", "x = 1\n", 3, None), ("bash", "nvidia-smi\n", 9, "needs a GPU."),
    ]
    with pytest.raises(ValueError, match="unclosed"):
        code_blocks("```python\nx = 1\n")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_block_is_python_or_bash_and_skips_say_why(page):
    blocks = code_blocks(page.read_text())
    assert blocks, f"{page.name} has no code"
    for b in blocks:
        assert b.lang in ("python", "bash"), f"{page.name}:{b.line}: a block must say python or bash"
        if b.skip_reason is not None:
            assert len(b.skip_reason) > 10, f"{page.name}:{b.line}: say why the block cannot run"
    assert any(b.skip_reason is None for b in blocks), f"{page.name}: no block runs"


def _shims(tmp: Path) -> Path:
    """``rrsis`` and ``python`` on PATH as this interpreter (with this checkout importable)."""
    bin_dir = tmp / ".bin"
    bin_dir.mkdir()
    for name, cmd in (("rrsis", f'exec "{sys.executable}" -m rrsis "$@"'),
                      ("python", f'exec "{sys.executable}" "$@"')):
        path = bin_dir / name
        path.write_text(f"#!/usr/bin/env bash\n{cmd}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _page_files(page: Path, work: Path) -> None:
    """Files a page says it starts from and cannot make itself: the official-format fixtures."""
    if "rmsin/checkpoint.pth" in page.read_text():
        fixtures = find_fixtures()
        if not (fixtures / "rmsin" / "checkpoint.pth").exists():
            pytest.skip("the official-format fixtures are not available")
        shutil.copytree(fixtures / "rmsin", work / "rmsin")


@pytest.fixture
def registries():
    """The guides register parts, models and tags: undo that, so other tests see the shipped tables."""
    import rrsis.models  # the shipped parts, models and formats register on import
    import rrsis.registry
    from rrsis import registry as _registry

    tables = [getattr(rrsis.registry, n) for n in rrsis.registry.__all__
              if isinstance(getattr(rrsis.registry, n), rrsis.registry.Registry)]
    saved = [(t, dict(t._entries)) for t in tables]
    models, tags = dict(_registry._model_entrypoints), dict(_registry._pretrained)
    yield
    for table, entries in saved:
        table._entries.clear()
        table._entries.update(entries)
    _registry._model_entrypoints.clear()
    _registry._model_entrypoints.update(models)
    _registry._pretrained.clear()
    _registry._pretrained.update(tags)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_guide_code_runs(page, tmp_path, monkeypatch, registries):
    work = tmp_path / "work"
    work.mkdir()
    _page_files(page, work)
    monkeypatch.chdir(work)
    env = dict(os.environ)
    env["PATH"] = f"{_shims(tmp_path)}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    kernels, threads = os.environ.get("RRSIS_KERNELS"), torch.get_num_threads()
    ran = 0
    try:
        for b in code_blocks(page.read_text()):
            if b.skip_reason is not None:
                continue
            where = f"{page.relative_to(ROOT)}:{b.line}"
            if b.lang == "python":
                exec(compile(b.code, where, "exec"), namespace)  # the guide's own code
            else:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", b.code], cwd=work, env=env,
                                      capture_output=True, text=True, timeout=600, check=False)
                assert done.returncode == 0, f"{where} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            ran += 1
    finally:
        torch.set_num_threads(threads)
        if kernels is None:
            os.environ.pop("RRSIS_KERNELS", None)
        else:
            os.environ["RRSIS_KERNELS"] = kernels
    assert ran > 0


def test_fixture_lookup_is_the_suites():
    # The convert guide runs on the same fixtures as tests/test_convert.py.
    assert find_fixtures() == FIXTURES
