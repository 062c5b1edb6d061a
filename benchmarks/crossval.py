"""Cross-validation on planted label noise: how stable a variant is, how wide the intervals get, and whether the
label-issue finder finds the swaps.

Usage:
    python benchmarks/crossval.py [--tree demo|shared] [--noise 0.05] [--folds 5] [--epochs 6]
        [--model mobilenetv2] [--size 64] [--variants data=balanced,unbalanced] [--work DIR] [--singles 0]

It copies a data tree (the 0.1-scale demo faces, or the 600 real photos of ../shared/data), moves a seeded
``--noise`` share of every class folder of every source into another class folder of the same source (the copy
knows which labels are now wrong), then runs the real command

    python -m facemix.train cv=kfold data.split.folds=K <variants> model=<m> ... (the folds are multirun jobs)

and prints, per variant, the out-of-fold macro F1 with its 95 % bootstrap interval beside fold 0's (one split's)
interval, the paired difference between the variants from ``facemix-compare`` (on all N images), the finder's
precision and recall at its own threshold and at the top-k (k = the number of planted swaps), and wall time and
peak memory of the whole CV; ``--singles N`` also times N single runs of the same settings (the CV's baseline).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
# the class folders of each tree, by source: a swap moves a file into another folder of its own source
TREES = {
    "demo": {
        **{f"face_mask/{split}": ["WithMask", "WithoutMask"] for split in ("Train", "Validation", "Test")},
        "real_and_fake_face": ["training_real", "training_fake"],
    },
    "shared": {"mask": ["with_mask", "without_mask"], "realfake": ["real", "fake"]},
}


def demo_root(work: Path) -> Path:
    from facemix.data.demo import write_demo

    return write_demo(work / "demo_clean", scale=0.1, seed=0, progress=False)


def plant_noise(clean: Path, noisy: Path, tree: str, share: float, seed: int = 0) -> dict[str, str]:
    """Copy ``clean`` to ``noisy`` with ``share`` of each class folder moved to the other folder of its source.
    Returns the moved files: new resolved path -> the folder they truly belong to."""
    shutil.copytree(clean, noisy, ignore=shutil.ignore_patterns("*.json"))
    rng = np.random.default_rng(seed)
    moved = {}
    for source, folders in TREES[tree].items():
        for k, folder in enumerate(folders):
            files = sorted((noisy / source / folder).glob("*.*"))
            for path in rng.choice(files, round(share * len(files)), replace=False):
                target = noisy / source / folders[1 - k] / f"swapped_{path.name}"
                path.rename(target)
                moved[str(target.resolve())] = folder
    return moved


def data_overrides(tree: str, noisy: Path) -> list[str]:
    if tree == "demo":  # the Kaggle layouts of the demo, under the noisy copy
        return [f"data.root={noisy}", "data.demo=null"]
    return ["data/sources=shared_samples", f"data.root={noisy}"]


def run(cmd: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and the peak RSS (GiB) of the command's process (GNU time's "Maximum resident set size")."""
    started = time.perf_counter()
    with open(log, "w") as fh:
        subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, check=True)
    seconds = time.perf_counter() - started
    rss = [line for line in log.read_text().splitlines() if "Maximum resident set size" in line]
    return seconds, int(rss[-1].split(":")[1]) / 2**20 if rss else float("nan")


def finder_scores(issues_csv: Path, moved: dict[str, str]) -> dict[str, float]:
    with open(issues_csv, newline="") as fh:
        flagged = [row["path"] for row in csv.DictReader(fh)]
    hits = sum(p in moved for p in flagged)
    top = sum(p in moved for p in flagged[: len(moved)])
    return {
        "flagged": len(flagged),
        "planted": len(moved),
        "precision": hits / max(1, len(flagged)),
        "recall": hits / max(1, len(moved)),
        "top_k_precision": top / max(1, min(len(moved), len(flagged))),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", choices=sorted(TREES), default="demo")
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--model", default="mobilenetv2")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--variants", default="data=balanced,unbalanced")
    ap.add_argument("--singles", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="facemix-cv-"))
    clean = demo_root(work) if args.tree == "demo" else SHARED
    moved = plant_noise(clean, work / "noisy", args.tree, args.noise)
    key, values = args.variants.split("=", 1)
    common = [
        f"model={args.model}", f"data.image_size={args.size}", f"trainer.max_epochs={args.epochs}",
        f"paths.data_dir={work / 'data'}", "trainer.enable_progress_bar=false", "data.num_workers=2",
        *data_overrides(args.tree, work / "noisy"),
    ]  # fmt: skip
    sweep = work / "sweep"
    cv_cmd = [sys.executable, "-m", "facemix.train", "cv=kfold", f"data.split.folds={args.folds}", f"{key}={values}"]
    seconds, peak = run([*cv_cmd, *common, f"hydra.sweep.dir={sweep}"], work / "cv.log")
    print(f"machine: {Path('/proc/cpuinfo').read_text().split('model name')[1].split(':')[1].splitlines()[0].strip()}")
    print(f"{args.tree}: {len(moved)} planted swaps ({args.noise:.0%} of every class folder); {args.folds}-fold CV of")
    print(f"  {args.variants}, {args.model} {args.size} px, {args.epochs} epochs: {seconds:.0f} s, peak {peak:.2f} GiB")
    for cv in sorted((sweep / "cv").iterdir()) if len(values.split(",")) > 1 else [sweep / "cv"]:
        summary = json.loads((cv / "cv_summary.json").read_text())
        oof = summary["test_report"]["intervals"]["macro f1"]
        fold0 = json.loads((Path(summary["fold_runs"][0]) / "summary.json").read_text())["test_report"]
        one = fold0["intervals"]["macro f1"]
        print(
            f"{cv.name}: OOF macro F1 {oof['value']:.3f} [{oof['low']:.3f}, {oof['high']:.3f}] over "
            f"{summary['images']} images (width {oof['high'] - oof['low']:.3f}); fold 0 alone "
            f"{one['value']:.3f} [{one['low']:.3f}, {one['high']:.3f}] over {fold0['macro avg']['support']} "
            f"(width {one['high'] - one['low']:.3f}); per fold: {[round(f['macro f1'], 3) for f in summary['per_fold']]}"  # noqa: E501
        )
        print(f"  label issues: {json.dumps(finder_scores(cv / 'label_issues.csv', moved))}")
    if len(values.split(",")) > 1:
        out = subprocess.run(
            [sys.executable, "-m", "facemix.compare", str(sweep), f"output_dir={work / 'cmp'}"],
            cwd=REPO, capture_output=True, text=True, check=True,
        )  # fmt: skip
        print("\n".join(line for line in out.stdout.splitlines() if "Paired" in line or line.startswith("| ")))
    for k in range(args.singles):
        single, peak1 = run([sys.executable, "-m", "facemix.train", *common, f"hydra.run.dir={work / f'single{k}'}"],
                            work / f"single{k}.log")  # fmt: skip
        print(f"single run {k}: {single:.0f} s, peak {peak1:.2f} GiB")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
