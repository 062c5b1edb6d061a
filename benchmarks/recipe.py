"""Which training-recipe switches make a small, imbalanced, merged set generalise better, with paired intervals.

Usage:
    python benchmarks/recipe.py [--data shared|muffin] [--variants default,ema,mixup,...] [--folds 5]
        [--epochs 8] [--size 96] [--model mobilenetv2] [--work DIR]

Every variant is one real cross-validation (``python -m facemix.train cv=kfold data.split.folds=K <variant>``) on
the real photos of ../shared/data: ``shared`` is the 3-class merge of the mask and real-vs-fake samples (600 photos),
``muffin`` the muffin / chihuahua pair (300). The folds are the same for every variant (same data, same seed), so
``facemix-compare`` pairs each variant with ``default`` on all N out-of-fold predictions. Same budget per variant:
the same epochs and batch size (TTA costs its extra evaluation passes, counted in the wall time). Prints a table:
OOF macro F1 [95 % CI], per-class F1, the paired difference against default [95 % CI], train images/s (mean over
folds, last epoch) and the wall time of the whole CV.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VARIANTS = {
    "default": [],
    "ema": ["averaging=ema"],
    "mixup": ["regularization=mixup"],
    "cutmix": ["regularization=cutmix"],
    "trivialaugment": ["augment=trivialaugment"],
    "randaugment": ["augment=randaugment"],
    "tta": ["report.tta=flip"],
    "average_top3": ["average_top_k=3", "callbacks.model_checkpoint.save_top_k=3"],
    "early_stopping": ["callbacks=early_stopping"],
    "cosine": ["scheduler=cosine"],
    "modern": ["recipe=modern"],
    "ema_mixup_cosine": ["averaging=ema", "regularization=mixup", "scheduler=cosine"],
    # the EMA as it was before its batch-norm statistics were recomputed (the averaged ones kept)
    "ema_averaged_bn": ["averaging=ema", "callbacks.weight_averaging.batch_norm_images=0"],
    "modern_averaged_bn": ["recipe=modern", "callbacks.weight_averaging.batch_norm_images=0"],
    "ema_mixup_cosine_averaged_bn": [
        "averaging=ema",
        "regularization=mixup",
        "scheduler=cosine",
        "callbacks.weight_averaging.batch_norm_images=0",
    ],
}
DATA = {
    "shared": ["data/sources=shared_samples", f"data.root={SHARED}"],
    "muffin": ["data=muffin_chihuahua", f"data.root={SHARED / 'muffin_chihuahua'}"],  # train : val 80 : 20 per fold
}  # fmt: skip


def cross_validate(name: str, overrides: list[str], common: list[str], work: Path) -> dict:
    sweep = work / name
    started = time.perf_counter()
    with open(work / f"{name}.log", "w") as log:
        cmd = [sys.executable, "-m", "facemix.train", "cv=kfold", *common, *overrides, f"hydra.sweep.dir={sweep}"]
        subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
    seconds = time.perf_counter() - started
    summary = json.loads((sweep / "cv" / "cv_summary.json").read_text())
    folds = [json.loads((Path(r) / "summary.json").read_text()) for r in summary["fold_runs"]]
    rate = sum(f["train_images_per_s"] for f in folds) / len(folds)
    return {"dir": sweep / "cv", "summary": summary, "seconds": seconds, "images_per_s": rate}


def paired(results: dict[str, dict], work: Path) -> dict[str, str]:
    """Each variant's Δ macro F1 against default, from facemix-compare's paired table (same images)."""
    dirs = [str(results["default"]["dir"])] + [str(r["dir"]) for n, r in results.items() if n != "default"]
    out = subprocess.run(
        [sys.executable, "-m", "facemix.compare", *dirs, f"output_dir={work / 'compare'}"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [line for line in out.stdout.split("Paired differences", 1)[-1].splitlines() if line.startswith("| ")][1:]
    deltas = {}
    for row, name in zip(rows, [n for n in results if n != "default"], strict=False):
        cells = [c.strip() for c in row.strip("|").split("|")]
        deltas[name] = cells[4]  # run | vs baseline | images | Δ accuracy | Δ macro f1 ...
    return deltas


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=sorted(DATA), default="shared")
    ap.add_argument("--variants", default="default,ema,mixup,cutmix,trivialaugment,randaugment,tta")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--model", default="mobilenetv2")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="facemix-recipe-"))
    work.mkdir(parents=True, exist_ok=True)
    common = [
        *DATA[args.data], f"data.split.folds={args.folds}", f"model={args.model}", f"data.image_size={args.size}",
        f"trainer.max_epochs={args.epochs}", f"paths.data_dir={work / 'data'}", "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    names = args.variants.split(",")
    if names[0] != "default":
        names.insert(0, "default")
    results = {}
    for name in names:
        existing = work / name / "cv" / "cv_summary.json"
        results[name] = cross_validate(name, VARIANTS[name], common, work) if not existing.exists() else None
        if results[name] is None:  # measured by an earlier call of this script into the same --work
            summary = json.loads(existing.read_text())
            folds = [json.loads((Path(r) / "summary.json").read_text()) for r in summary["fold_runs"]]
            rate = sum(f["train_images_per_s"] for f in folds) / len(folds)
            results[name] = {"dir": existing.parent, "summary": summary, "seconds": float("nan"), "images_per_s": rate}
        print(f"{name}: done", flush=True)
    deltas = paired(results, work)
    classes = results["default"]["summary"]["class_names"]
    print(f"\n{args.data}: {args.folds}-fold CV, {args.model} {args.size} px, {args.epochs} epochs ({work})")
    head = ["variant", "OOF macro F1 [95% CI]", *(f"F1 {c}" for c in classes), "Δ macro F1 vs default [95% CI]",
            "train img/s", "CV wall (s)"]  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, r in results.items():
        report = r["summary"]["test_report"]
        ci = report["intervals"]["macro f1"]
        cells = [name, f"{ci['value']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]",
                 *(f"{report[c]['f1-score']:.3f}" for c in classes), deltas.get(name, "(baseline)"),
                 f"{r['images_per_s']:.0f}", f"{r['seconds']:.0f}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
