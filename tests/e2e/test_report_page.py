"""``report.html`` opened as a user opens it: in a real browser (headless Chromium), every picture decodes and the page
holds the run's macro F1; the comparison and cross-validation pages render the same way."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
)


def rendered(page, tmp_path) -> str:
    """The page's DOM after load, from headless Chromium (the flags this machine's closed network needs)."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _images(dom: str) -> tuple[int, int]:
    loaded, total = re.search(r'data-images="(\d+)/(\d+)"', dom).groups()
    return int(loaded), int(total)


def test_the_run_page_shows_every_figure_and_the_runs_numbers(trained_run, tmp_path):
    summary = json.loads((trained_run / "summary.json").read_text())
    dom = rendered(trained_run / "report.html", tmp_path)
    loaded, total = _images(dom)
    assert loaded == total >= 7  # confusion matrix, reliability, curves, gallery, Grad-CAM, card, preview
    assert f"{summary['test_report']['macro avg']['f1-score']:.3f}" in dom
    for heading in ("Classification report", "Per source", "Data", "How it ran"):
        assert heading in dom


def test_the_comparison_page_renders_its_table_and_chart(trained_run, tmp_path):
    from facemix.evaluation.compare import compare

    compare([trained_run], tmp_path / "cmp")
    dom = rendered(tmp_path / "cmp" / "report.html", tmp_path)
    assert _images(dom) == (1, 1) and "test macro F1" in dom
