"""Regenerate the README's pictures from a demo run: ``python docs/make_images.py [RUN_DIR]``.

Without RUN_DIR it first runs ``facemix-train`` with the defaults (the README's main job, ~5 minutes on 2 CPU cores)
and takes the figures from that run.
The PNGs are shrunk to at most 900 px and 128 colours so the repository stays small.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
FIGURES = ("gallery.png", "confusion_matrix.png", "dataset_card.png", "curves.png")


def latest_run(outputs: Path) -> Path:
    runs = sorted((p.parent for p in outputs.glob("*/*/summary.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no finished run under {outputs}")
    return runs[-1]


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


if __name__ == "__main__":
    main(sys.argv[1:])
