"""Time to draw a run's image grids (prediction gallery, Grad-CAM gallery, augmentation preview) and write them to the
PNG and TensorBoard, facemix against the usual matplotlib way, in one process on the same pictures.

Usage: python benchmarks/report_figures.py [--pictures 36] [--size 64] [--repeats 5]

Baseline ("one axes per picture"): ``plt.subplots(rows, 6)``, ``imshow`` + ``set_title`` per picture,
``tight_layout``, ``savefig`` for the PNG, then ``SummaryWriter.add_figure``, which draws the figure a second time
(what facemix did before). facemix: ``facemix.reports.plots.gallery_figure`` (one image, one label per picture),
drawn once by ``figure_to_array``; the same pixels go to the PNG and to ``add_image``. Prints seconds per gallery
(median of the repeats) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from facemix.reports.plots import figure_to_array, gallery_figure, plt, save_image


def one_axes_per_picture(pictures, titles, correct, out: Path, writer: SummaryWriter, columns: int = 6) -> None:
    rows = (len(pictures) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title, ok in zip(axes.flat, pictures, titles, correct, strict=False):
        ax.imshow(image)
        ax.set_title(title, fontsize=8, color="green" if ok else "red")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    writer.add_figure("gallery", fig, close=True)


def facemix_grid(pictures, titles, correct, out: Path, writer: SummaryWriter) -> None:
    pixels = figure_to_array(gallery_figure(pictures, titles, correct))
    save_image(pixels, out)
    writer.add_image("gallery", pixels, 0, dataformats="HWC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pictures", type=int, default=36)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for _ in range(args.pictures)]
    titles = [f"pred fake {rng.random():.2f}\ntrue real" for _ in pictures]
    correct = [bool(rng.random() > 0.5) for _ in pictures]
    times: dict[str, list[float]] = {"one axes per picture (baseline)": [], "facemix": []}
    with tempfile.TemporaryDirectory() as tmp, SummaryWriter(tmp) as writer:
        for i in range(args.repeats + 1):  # the first round warms fonts and caches up; not counted
            for name, draw in zip(times, (one_axes_per_picture, facemix_grid), strict=True):
                start = time.perf_counter()
                draw(pictures, titles, correct, Path(tmp) / f"{i}.png", writer)
                if i:
                    times[name].append(time.perf_counter() - start)
    print(f"{args.pictures} pictures of {args.size} px, PNG + TensorBoard, median of {args.repeats}:")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in medians.items():
        print(f"  {name:34s} {seconds:6.3f} s")
    baseline, ours = medians.values()
    print(f"  facemix is {baseline / ours:.1f}x faster than the baseline")


if __name__ == "__main__":
    main()
