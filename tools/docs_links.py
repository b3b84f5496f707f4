"""Links from the docs to generated pages, written so that they work on GitHub too.

The site has pages that exist only once it is built (``tools/docs_pages.py``): the benchmark
pages, the changelog, the model zoo, the API reference. A link in ``docs/*.md`` names the
repository file such a page is made from (``../../benchmarks/results/demo-cpu.md``,
``../CHANGELOG.md``), which GitHub shows; at build time ``tools/mkdocs_hooks.py`` calls
:func:`rewrite_links`, which points it at the generated page instead. Which file stands for which
page is :func:`site_page`. A page with no file of its own behind it (``time-to-train.md``) has a
placeholder in ``docs/`` that the build replaces, so its plain site link works both ways.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = "docs"
RESULTS = "benchmarks/results"

# Repository files (an anchor included where only that section stands for the page) → the page
# generated from them, as a path inside docs/.
PAGES = {
    "CHANGELOG.md": "changelog.md",
    "README.md#models": "models.md",  # the README's model table; the zoo page adds the tags
    "rrsis/__init__.py": "api/index.md",  # the public names and the module of each
    RESULTS: "benchmarks/index.md",  # the folder GitHub lists; the site's index of its pages
}

_FENCE = re.compile(r"\s*(`{3,}|~{3,})")
_CODE = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)*?\1", re.S)  # inline code: within a paragraph
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s()<>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[(?!\^)[^\]]+\]:\s*<?([^\s<>]+)>?", re.M)
_HTML = re.compile(r"<(?:a|img)\b[^>]*?\s(?:href|src)=[\"']([^\"']+)[\"']", re.I)


def _prose(text: str) -> str:
    """``text`` with fenced blocks and inline code blanked out (same length, so offsets hold)."""
    out, fence = [], None
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line[m.end():].strip():
                fence = None
            out.append(re.sub(r"[^\n]", " ", line))
            continue
        if m:
            fence = m.group(1)
            out.append(re.sub(r"[^\n]", " ", line))
            continue
        out.append(line)
    return _CODE.sub(lambda c: re.sub(r"[^\n]", " ", c.group(0)), "".join(out))


def links(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, target)`` of every link and image target of a Markdown page, code left out:
    inline ``[text](target)``, reference definitions ``[id]: target`` and HTML ``href``/``src``."""
    prose = _prose(text)
    found = [m.span(1) for pattern in (_INLINE, _REFERENCE, _HTML) for m in pattern.finditer(prose)]
    for start, end in sorted(found):
        yield start, end, text[start:end]


def is_local(target: str) -> bool:
    """A link into the repository: not a URL (``https:``, ``mailto:``...) nor a bare ``#anchor``."""
    return not (target.startswith(("#", "/")) or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target))


def site_page(repo_path: str, anchor: str = "", root: Path = ROOT) -> str | None:
    """The generated page (a path inside docs/) that the repository file ``repo_path`` (relative to
    the repository, with the link's ``anchor``) stands for, or None."""
    repo_path = repo_path.rstrip("/")
    if anchor and f"{repo_path}#{anchor}" in PAGES:
        return PAGES[f"{repo_path}#{anchor}"]
    if repo_path in PAGES:
        return PAGES[repo_path]
    folder, _, name = repo_path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    # benchmark_pages: one page per results .json, and per results .md without one
    if folder == RESULTS and dot and ext in ("md", "json") and (root / repo_path).is_file():
        return f"benchmarks/{stem}.md"
    return None


def rewrite_links(markdown: str, page: str, root: Path = ROOT) -> str:
    """``markdown`` of the docs page ``page`` (a path inside docs/) with every link to a repository
    file that stands for a generated page (:func:`site_page`) pointed at that page."""
    here = posixpath.dirname(f"{DOCS}/{page}")
    out, last = [], 0
    for start, end, target in links(markdown):
        if not is_local(target):
            continue
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(here, path)) if path else ""
        generated = site_page(repo_path, anchor, root) if repo_path and not repo_path.startswith("..") else None
        if generated is None:
            continue
        new = posixpath.relpath(f"{DOCS}/{generated}", here)
        if anchor and f"{repo_path}#{anchor}" not in PAGES:
            new += f"#{anchor}"
        out += [markdown[last:start], new]
        last = end
    return "".join(out) + markdown[last:]
