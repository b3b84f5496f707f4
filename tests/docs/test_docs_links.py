"""Every relative link of README.md and docs/ names a file of the repository, so GitHub, which
renders those files and follows their links inside the repository, shows no broken link; the site
build points the links that name a generated page's repository file at that page
(``tools/docs_links.py``, called from ``tools/mkdocs_hooks.py``)."""

from __future__ import annotations

import sys

from _fixtures import REPO

ROOT = REPO
sys.path.insert(0, str(ROOT))
from tools import docs_links, docs_pages


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_relative_link_names_a_file_of_the_repository():
    broken, checked = [], 0
    for page in _pages():
        for _, _, target in docs_links.links(page.read_text()):
            if not docs_links.is_local(target):
                continue
            path = target.partition("#")[0]
            if not path:
                continue
            checked += 1
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert checked, "no relative link found"
    why = "links that 404 on GitHub (name the repository file; the site build rewrites it, tools/docs_links.py)"
    assert not broken, why + ":\n" + "\n".join(broken)


def test_links_are_found_outside_code_only():
    text = "\n".join([
        "See [a](one.md#x) and ![b](img.png 'title') and [c [nested]](<two.md>).",
        "Inline code `[no](code.md)` and ``[no](code2.md)`` is not a link.",
        "```python",
        "x = '[no](fenced.md)'",
        "```",
        "~~~~",
        "[no](tilde.md)",
        "~~~~",
        "[ref]: three.md#y",
        "[^1]: a footnote, not a link",
        '<a href="four.md">four</a> <img src="five.png">',
        "[web](https://example.org/a.md) [mail](mailto:a@b.c) [here](#anchor)",
    ])
    found = [target for _, _, target in docs_links.links(text)]
    assert found == ["one.md#x", "img.png", "two.md", "three.md#y", "four.md", "five.png",
                     "https://example.org/a.md", "mailto:a@b.c", "#anchor"]
    assert [t for t in found if docs_links.is_local(t)] == found[:6]
    for start, end, target in docs_links.links(text):
        assert text[start:end] == target


def test_repository_links_become_links_to_the_generated_pages():
    results = "../../benchmarks/results"
    source = "\n".join([
        f"[md]({results}/large-scene-v13-cpu-seed0.md#accuracy) [json]({results}/large-scene-ranker-seed0.json)",
        f"[index]({results}/) [gone]({results}/no-such-run.md) [changes](../../CHANGELOG.md#unreleased)",
        "[zoo](../../README.md#models) [setup](../../README.md#set-up) [api](../../rrsis/__init__.py)",
        "[guide](bands.md#x) [web](https://example.org/CHANGELOG.md)",
        f"`[code]({results}/demo-cpu.md)`",
    ])
    expected = "\n".join([
        "[md](../benchmarks/large-scene-v13-cpu-seed0.md#accuracy) [json](../benchmarks/large-scene-ranker-seed0.md)",
        f"[index](../benchmarks/index.md) [gone]({results}/no-such-run.md) [changes](../changelog.md#unreleased)",
        "[zoo](../models.md) [setup](../../README.md#set-up) [api](../api/index.md)",
        "[guide](bands.md#x) [web](https://example.org/CHANGELOG.md)",
        f"`[code]({results}/demo-cpu.md)`",
    ])
    assert docs_links.rewrite_links(source, "guides/geotiff.md") == expected
    assert docs_links.rewrite_links("[c](../CHANGELOG.md) [s](../benchmarks/results/sm90-ptxas.md)",
                                    "index.md") == "[c](changelog.md) [s](benchmarks/sm90-ptxas.md)"


def test_every_page_a_repository_file_stands_for_is_generated():
    generated = docs_pages.generated_pages()
    for key, page in docs_links.PAGES.items():
        assert page in generated, f"{key} stands for {page}, which tools/docs_pages.py does not make"
    for path in sorted(docs_pages.RESULTS.iterdir()):
        if path.suffix in (".md", ".json"):
            page = docs_links.site_page(path.relative_to(ROOT).as_posix())
            assert page in generated, f"{path.name} stands for {page}, which is not generated"
