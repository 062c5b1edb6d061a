"""``facemix-predict`` against the exported ONNX model in onnxruntime, on the same images (issue [6/6] item 5).

Usage:
    python benchmarks/predict_throughput.py --ckpt <run>/checkpoints/<best>.ckpt [--images 2000] [--scale 0.15]
        [--rounds 2] [--workers 2] [--batch 32] [--work DIR]

Inputs: the first ``--images`` files of the demo drawn at ``--scale`` (the Kaggle sets' native sizes: ~600 px
real / fake JPEGs and ~150 px mask PNGs), so decoding costs what it costs on real downloads. Baseline (named
"onnxruntime"): the checkpoint exported with ``facemix-export format=onnx`` (uint8 pixels in, probabilities out),
run by a script a deployment would write: OpenCV decode, resize to the model's size with the same interpolation,
batches of ``--batch``, one process, onnxruntime's default threads. facemix: the real command,
``python -m facemix.predict ckpt=... inputs=<dir> num_workers=<workers> batch_size=<batch>`` (decoding in loader
workers, the same prediction loop as evaluation). Both run as fresh processes, alternating, ``--rounds`` times;
printed per round: images/s of the prediction loop alone (facemix's own "predicted N images in X s" line; the
script's loop), of the whole command (start-up and writing the CSV / JSON included), peak RSS, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORT_SCRIPT = r"""
import json, sys, time
import cv2, numpy as np, onnxruntime as ort
model, listing, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = json.loads(open(model + ".json").read())
size = meta["input"]["shape"][2]
flags = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
flag = flags[meta["input"]["interpolation"]]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
files = open(listing).read().split("\n")
started = time.perf_counter()
out = []
for i in range(0, len(files), batch):
    pixels = []
    for f in files[i : i + batch]:
        img = cv2.cvtColor(cv2.imread(f, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        pixels.append(cv2.resize(img, (size, size), interpolation=flag).transpose(2, 0, 1))
    out.append(session.run(None, {"image": np.stack(pixels)})[0])
seconds = time.perf_counter() - started
print(json.dumps({"images": sum(len(o) for o in out), "seconds": seconds}))
"""


def timed(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GiB) and output of ``cmd`` run under GNU time."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    log.write_text(result.stdout + result.stderr)
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 2**20
    return wall, peak, result.stdout + result.stderr


def inputs_of(work: Path, scale: float, count: int) -> Path:
    from facemix.data.demo import write_demo

    root = write_demo(work / "demo", scale=scale, seed=0, progress=False)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[:: max(1, len(files) // count)][:count]  # every k-th: both sources, all classes
    folder = work / "inputs"
    folder.mkdir(exist_ok=True)
    for k, f in enumerate(files):
        link = folder / f"{k:05d}{f.suffix}"
        if not link.exists():
            link.symlink_to(f)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=0.15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="facemix-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    folder = inputs_of(work, args.scale, args.images)
    files = sorted(str(p.resolve()) for p in folder.iterdir())
    (work / "files.txt").write_text("\n".join(files))
    onnx_dir = work / "onnx"
    if not (onnx_dir / "model.onnx").exists():
        cmd = [sys.executable, "-m", "facemix.export", f"ckpt={args.ckpt}", "format=onnx", f"output_dir={onnx_dir}"]
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    print(f"{len(files)} images, batch {args.batch}, facemix with {args.workers} loader workers ({work})")
    print("| round | facemix loop img/s | facemix command img/s | peak GiB | onnxruntime loop img/s | "
          "onnxruntime command img/s | peak GiB | onnxruntime / facemix (loop) |\n|" + "---|" * 8)  # fmt: skip
    for r in range(args.rounds):
        wall, peak, out = timed(
            [sys.executable, "-m", "facemix.predict", f"ckpt={args.ckpt}", f"inputs={folder}",
             f"num_workers={args.workers}", f"batch_size={args.batch}", f"hydra.run.dir={work / f'predict{r}'}"],
            work / f"predict{r}.log",
        )  # fmt: skip
        n, seconds = re.search(r"predicted (\d+) images in ([\d.]+) s", out).groups()
        loop = int(n) / float(seconds)
        ort_wall, ort_peak, ort_out = timed(
            [sys.executable, "-c", ORT_SCRIPT, str(onnx_dir / "model.onnx"), str(work / "files.txt"), str(args.batch)],
            work / f"ort{r}.log",
        )
        ort = json.loads(ort_out.strip().splitlines()[0])
        ort_loop = ort["images"] / ort["seconds"]
        print(
            f"| {r + 1} | {loop:.0f} | {int(n) / wall:.0f} | {peak:.2f} | {ort_loop:.0f} | "
            f"{ort['images'] / ort_wall:.0f} | {ort_peak:.2f} | {ort_loop / loop:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
