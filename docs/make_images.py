"""Regenerate the README's pictures from a demo run: ``python docs/make_images.py [RUN_DIR]``.

Without RUN_DIR it first runs ``facemix-train`` with the defaults (the README's main job, ~5 minutes on 2 CPU cores)
and takes the figures from that run.
The PNGs are shrunk to at most 900 px and 128 colours so the repository stays small. ``report.png`` is the run's
``report.html`` as headless Chromium draws it (skipped where Chromium is not installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
FIGURES = ("gallery.png", "confusion_matrix.png", "dataset_card.png", "curves.png")


def latest_run(outputs: Path) -> Path:
    runs = sorted((p.parent for p in outputs.glob("*/*/summary.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no finished run under {outputs}")
    return runs[-1]


def screenshot(page: Path, target: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("no chromium: report.png not redrawn")
        return
    with tempfile.TemporaryDirectory() as profile:
        shot = Path(profile) / "shot.png"
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--window-size=1100,1400",
             f"--screenshot={shot}", page.as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
        with Image.open(shot) as image:
            image.convert("RGB").quantize(colors=128).save(target, optimize=True)
    print(f"{target} <- {page}")


def main(argv: list[str]) -> None:
    if argv:
        run_dir = Path(argv[0])
    else:
        subprocess.run([sys.executable, "-m", "facemix.train", "trainer.enable_progress_bar=false"], check=True)
        run_dir = latest_run(Path("outputs"))
    out = HERE / "images"
    out.mkdir(exist_ok=True)
    for name in FIGURES:
        with Image.open(run_dir / name) as image:
            image = image.convert("RGB")
            image.thumbnail((900, 900))
            image.quantize(colors=128).save(out / name, optimize=True)  # a palette PNG: a fraction of the bytes
        print(f"{out / name} <- {run_dir / name}")
    screenshot(run_dir / "report.html", out / "report.png")


if __name__ == "__main__":
    main(sys.argv[1:])
