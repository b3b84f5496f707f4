"""Benchmark pages of scripts that write their own report beside the data (cpu_inference.py)."""

from __future__ import annotations

import json
import sys

from _fixtures import REPO

sys.path.insert(0, str(REPO))
from tools import docs_pages


def test_a_cpu_inference_result_is_shown_as_its_report(tmp_path):
    (tmp_path / "cpu-inference.json").write_text(json.dumps({"meta": {"cores": 2}, "rows": [{"model": "m"}]}))
    (tmp_path / "cpu-inference.md").write_text("# Full-size models on a CPU\n\nmeasured so\n\n| a |\n|---|\n| 1 |\n")
    pages = docs_pages.benchmark_pages(tmp_path)
    page = str(pages["benchmarks/cpu-inference.md"])
    assert page.splitlines()[0] == "# Full-size models on a CPU"
    assert "Generated from `benchmarks/results/cpu-inference.json`." in page
    assert "| 1 |" in page and "No page layout knows" not in page
    assert "[Full-size models on a CPU](cpu-inference.md)" in str(pages["benchmarks/index.md"])


def test_the_committed_cpu_inference_results_have_a_page():
    pages = docs_pages.benchmark_pages()
    page = str(pages["benchmarks/cpu-inference.md"])
    assert page.startswith("# Full-size models on a CPU") and "| gl-msin |" in page
