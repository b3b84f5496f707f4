"""mkdocs hook: add the generated pages (``tools/docs_pages.py``) to the site at every build, and
point the links that name their repository files (``tools/docs_links.py``) at them."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def on_config(config):
    """List every results file's page under "Benchmarks" in the navigation (the files decide)."""
    from tools.docs_pages import RESULTS

    pages = [f"benchmarks/{path.stem}.md" for path in sorted(RESULTS.glob("*.json"))]
    pages += [f"benchmarks/{path.name}" for path in sorted(RESULTS.glob("*.md"))
              if not path.with_suffix(".json").exists()]
    for item in config.nav or []:
        if isinstance(item, dict) and "Benchmarks" in item:
            item["Benchmarks"] = [*item["Benchmarks"], *pages]
    return config


def on_files(files: Files, config) -> Files:
    from tools.docs_pages import generated_pages

    for path, content in generated_pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Links written for GitHub (``../../benchmarks/results/demo-cpu.md``) → the generated page."""
    from tools.docs_links import rewrite_links

    return rewrite_links(markdown, page.file.src_uri)
