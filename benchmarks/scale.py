"""The data pipeline at the real sets' sizes: per step wall time, µs per image and peak RSS at N = 1.4k, 14k, 140k.

    .venv/bin/python benchmarks/scale.py --work /big/disk/facemix-scale            # scales 0.1,1,10
    .venv/bin/python benchmarks/scale.py --work ... --scales 0.1,1 --no-epoch       # quicker

Each N is the built-in demo at that scale (distinct procedural draws: any merge between two of them is false) plus
planted copies of 1 % of its images in a third source (exact, JPEG quality 35, resized to 60 %, centre-cropped by
2-5 % per side, blurred), so duplicate recall is measured too. Every step runs in its own process, so its peak RSS
is its own (os.wait4); the parent prints the table and checks the targets: time per image at the largest N within
1.5x of the next smaller for every step, peak RSS at 140k <= 4 GB (the memory-mapped image cache is a file), and a
rescan of the unchanged tree <= 10 s. At N <= 20k the multi-index candidate pairs are checked against the
all-pairs search; at 140k that search would take hours, so only the fast one runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
STEPS = ("draw", "plant", "scan", "rescan", "duplicates", "probe", "split", "manifest", "cache", "epoch")
TRANSFORMS = ("exact", "jpeg35", "resized", "crop2", "crop3", "crop4", "crop5", "blur")


def _paths(work: Path, scale: float) -> dict[str, Path]:
    base = work / f"scale_{scale}"
    return {
        "demo": base / "demo",
        "planted": base / "planted",
        "truth": base / "planted.json",
        "scan_cache": base / "scan_cache",
        "state": base / "state",
        "image_cache": base / "image_cache",
    }


# ---- steps (each in its own process) -------------------------------------------------------------------------------


class Clock:
    """A step's own time: steps that first load what an earlier step made call ``restart()`` when their work begins."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 2)


CLASSES = ["real", "fake", "masked"]
LABELS = {"WithMask": "masked", "WithoutMask": "real", "training_real": "real", "training_fake": "fake"}


def _sources(p: dict[str, Path]) -> list:
    from facemix.data.manifest import specs_from_config

    planted = {d.name: LABELS[d.name] for d in p["planted"].iterdir() if d.is_dir()}
    return specs_from_config(
        {
            "mask": {
                "root": str(p["demo"] / "face_mask"),
                "layout": "split_folders",
                "label_map": {k: LABELS[k] for k in ("WithMask", "WithoutMask")},
            },
            "realfake": {
                "root": str(p["demo"] / "real_and_fake_face"),
                "layout": "kaggle_realfake",
                "label_map": {k: LABELS[k] for k in ("training_real", "training_fake")},
            },
            "planted": {"root": str(p["planted"]), "layout": "imagefolder", "label_map": planted},
        }
    )


def _files(p: dict[str, Path]) -> list[Path]:
    from facemix.data.sources import SourceScan, scan_source

    scan = SourceScan()
    for spec in _sources(p):
        scan_source(spec, scan)
    return [f.path for f in scan.files]


def step_draw(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    from facemix.data.demo import demo_plan, write_demo

    write_demo(p["demo"], scale=scale, seed=0, progress=False)
    return {"images": len(demo_plan(scale))}


def step_plant(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    """Copies of 1 % of the demo's images, each under one transformation, into a third source."""
    import cv2
    import numpy as np

    from facemix.data.images import load_rgb

    originals = sorted(p["demo"].rglob("*.jpg"))
    rng = np.random.default_rng(7)
    chosen = rng.choice(len(originals), max(8, len(originals) // 100), replace=False)
    truth = {}
    for k, index in enumerate(sorted(chosen)):
        source = originals[index]
        image = load_rgb(source)
        kind = TRANSFORMS[k % len(TRANSFORMS)]
        h, w = image.shape[:2]
        if kind.startswith("crop"):
            c = int(kind[4:]) / 100
            y, x = int(round(h * c)), int(round(w * c))
            image = image[y : h - y, x : w - x]
        elif kind == "resized":
            image = cv2.resize(image, (int(w * 0.6), int(h * 0.6)), interpolation=cv2.INTER_AREA)
        elif kind == "blur":
            image = cv2.GaussianBlur(image, (0, 0), 1.0)
        label = source.parent.name  # class folder of the original (copies keep the class: no label conflict)
        out = p["planted"] / label / f"{kind}_{k:05d}.{'png' if kind == 'exact' else 'jpg'}"
        out.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if kind == "exact":
            cv2.imwrite(str(out), bgr)  # lossless: identical decoded pixels
        else:
            cv2.imwrite(str(out), bgr, [cv2.IMWRITE_JPEG_QUALITY, 35 if kind == "jpeg35" else 92])
        truth[str(out)] = str(source)
    p["truth"].write_text(json.dumps(truth))
    return {"images": len(truth)}


def step_scan(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    from facemix.data.health import ScanCache, scan_images

    files = _files(p)
    cache = ScanCache(p["scan_cache"])
    infos = scan_images(files, cache, progress=False)
    bad = sum(not i.ok for i in infos.values())
    return {"images": len(files), "bad": bad}


def bucket_candidates(hashes, radius: int) -> int:
    """Pairs the multi-index search checks (bucket hits over every band and probe): what grows with N squared."""
    import numpy as np

    from facemix.data.duplicates import BANDS, _bands, _masks

    query, table = _bands(hashes[:, 0]), _bands(hashes.reshape(-1, hashes.shape[-1]))
    total = 0
    for band, width in enumerate(BANDS):
        in_query = np.bincount(query[:, band], minlength=1 << width)
        in_table = np.bincount(table[:, band], minlength=1 << width)
        keys = np.arange(1 << width)
        total += sum(int(in_query @ in_table[keys ^ mask]) for mask in _masks(width, radius // len(BANDS)))
    return total


def step_duplicates(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    import numpy as np
    from duplicates_real import bit_stats, distance  # the sibling script (benchmarks/ is this script's folder)

    from facemix.data.duplicates import (
        candidate_pairs,
        candidate_pairs_all_pairs,
        duplicate_groups,
        flat_of,
        pack_bits,
        pair_scores,
        projections_of,
        search_hashes,
    )
    from facemix.data.health import ScanCache, scan_images

    files = _files(p)
    cache = ScanCache(p["scan_cache"])
    scanned = scan_images(files, cache, progress=False)
    infos = [scanned[str(f)] for f in files]
    rows = np.array([i.row for i in infos], dtype=np.int64)
    clock.restart()
    groups = duplicate_groups([i.pixel_sha1 for i in infos], cache.fingerprints, rows)
    seconds = clock.seconds()
    truth = json.loads(p["truth"].read_text())
    index = {str(f): k for k, f in enumerate(files)}
    found = sum(groups[index[copy]] == groups[index[original]] for copy, original in truth.items())
    members: dict[int, list[str]] = {}
    for f, g in zip(files, groups, strict=True):
        if str(f) not in truth:  # demo originals: every one a distinct draw
            members.setdefault(g, []).append(str(f))
    false_merges = sum(len(m) - 1 for m in members.values() if len(m) > 1)
    out = {
        "images": len(files),
        "planted": len(truth),
        "planted_found": int(found),
        "recall": found / len(truth),
        "false_merges": false_merges,
        "seconds": seconds,
    }
    # where the time goes, and what the data's own frame buys: bucket candidates with raw projection signs
    flat = flat_of(cache.fingerprints, rows)
    clock.restart()
    hashes = search_hashes(cache.fingerprints, rows, flat)
    out["hash_seconds"] = clock.seconds()
    clock.restart()
    pairs = candidate_pairs(hashes, 13, flat)
    out["candidate_seconds"] = clock.seconds()
    clock.restart()
    pair_scores(cache.fingerprints, pairs, rows)
    out["verify_seconds"] = clock.seconds()
    raw = pack_bits(projections_of(cache.fingerprints, rows) > 0)
    out["bucket_candidates"] = bucket_candidates(hashes[~flat], 13)
    out["bucket_candidates_raw_signs"] = bucket_candidates(raw[~flat], 13)
    out["pairs_within_radius"] = len(pairs)
    farthest: dict[str, int] = {}
    for copy, original in truth.items():  # kind of copy: the planted file's name starts with it
        kind = Path(copy).name.split("_")[0]
        farthest[kind] = max(farthest.get(kind, 0), distance(hashes, index[copy], index[original]))
    out["farthest_copy_bits"] = farthest
    out["bits"], out["bits_raw_signs"] = bit_stats(hashes[~flat]), bit_stats(raw[~flat])
    if len(files) <= 20_000:  # the quadratic reference
        fast, slow = candidate_pairs(hashes, 13, flat), candidate_pairs_all_pairs(hashes, 13, flat)
        out["candidates"] = len(fast)
        out["candidates_equal_all_pairs"] = bool(fast.shape == slow.shape and (fast == slow).all())
    return out


def _built(p: dict[str, Path]):
    from facemix.data.health import ScanCache
    from facemix.data.manifest import build_manifest

    return build_manifest(_sources(p), CLASSES, ScanCache(p["scan_cache"]), progress=False)


def step_probe(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    from facemix.data.health import shortcut_features, shortcut_probe

    built = _built(p)
    originals = built.samples
    clock.restart()
    probe = shortcut_probe(shortcut_features([built.info_of(s) for s in originals]), [s.label for s in originals])
    return {"images": len(originals), "balanced_accuracy": probe["balanced_accuracy"]}


def step_split(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    from facemix.data.manifest import write_manifest
    from facemix.data.split import split_samples

    built = _built(p)
    clock.restart()
    samples = split_samples(built.samples, {"train": 0.6, "val": 0.3, "test": 0.1}, seed=0)
    p["state"].mkdir(parents=True, exist_ok=True)
    write_manifest(samples, p["state"] / "manifest.csv")
    return {"images": len(samples)}


def step_manifest(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    """Read the split manifest back, build and write the dataset card: what every run does after the scan."""
    from facemix.data.card import Findings, build_card, write_card
    from facemix.data.manifest import read_manifest
    from facemix.run.rundir import RunDir

    run = RunDir(p["state"])
    samples = read_manifest(run.manifest)
    card = build_card(samples, CLASSES, Findings([], [], [], {}, None))
    write_card(card, run.card_json, run.card_markdown)
    return {"images": len(samples)}


def step_cache(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    from facemix.data.cache import build_cache
    from facemix.data.manifest import read_manifest

    samples = read_manifest(p["state"] / "manifest.csv")
    images = build_cache([s.path for s in samples], 64, p["image_cache"], progress=False)
    return {"images": len(samples), "decoded": images.decoded}


def step_epoch(p: dict[str, Path], scale: float, clock: Clock) -> dict:
    """One training epoch of MobileNetV2 at 64 px over the train split, from the decoded cache."""
    import pytorch_lightning as pl
    import torch

    from facemix.augment.presets import train_transform
    from facemix.config.compose import augment_ops
    from facemix.data.cache import build_cache
    from facemix.data.dataset import ManifestDataset
    from facemix.data.manifest import read_manifest
    from facemix.models.module import ClassifierModule

    torch.set_num_threads(os.cpu_count() or 1)
    samples = read_manifest(p["state"] / "manifest.csv")
    classes = CLASSES
    images = build_cache([s.path for s in samples], 64, p["image_cache"], progress=False)
    train = [s for s in samples if s.split == "train"]
    dataset = ManifestDataset(
        train, {c: i for i, c in enumerate(classes)}, train_transform(augment_ops("light"), 64, 0), images
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=2, persistent_workers=True)
    model = ClassifierModule("mobilenetv2", len(classes), classes, 64, channels_last=True)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
        limit_val_batches=0,
        enable_model_summary=False,
    )
    clock.restart()
    trainer.fit(model, train_dataloaders=loader)
    return {"images": len(train)}


# ---- orchestration -------------------------------------------------------------------------------------------------


def run_step(step: str, work: Path, scale: float) -> dict:
    """Run one step in a child process: its result (with ``seconds``, the step's own time after the imports) and
    the child's peak RSS."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--work", str(work), "--child", step, "--scales", str(scale)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"step {step} at scale {scale} failed:\n{out[-3000:]}")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def child(step: str, work: Path, scale: float) -> None:
    import logging

    logging.disable(logging.WARNING)
    p = _paths(work, scale)
    functions = {
        "draw": step_draw,
        "plant": step_plant,
        "scan": step_scan,
        "rescan": step_scan,
        "duplicates": step_duplicates,
        "probe": step_probe,
        "split": step_split,
        "manifest": step_manifest,
        "cache": step_cache,
        "epoch": step_epoch,
    }
    import facemix.data.cache  # noqa: F401  (imports before the clock starts: each step is timed on its own work)
    import facemix.data.card  # noqa: F401
    import facemix.data.demo  # noqa: F401
    import facemix.data.manifest  # noqa: F401
    import facemix.data.split  # noqa: F401

    if step == "epoch":
        import facemix.models.module  # noqa: F401
    clock = Clock()
    result = functions[step](p, scale, clock)
    print(json.dumps({"seconds": clock.seconds(), **result}, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a folder with room for ~5 GB at scale 10")
    parser.add_argument("--scales", default="0.1,1,10")
    parser.add_argument("--no-epoch", action="store_true", help="skip the MobileNetV2 epoch")
    parser.add_argument(
        "--steps", help="only these steps (comma-separated), on what an earlier full run left in --work"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    if args.child:
        child(args.child, args.work, scales[0])
        return
    import platform

    import torch

    py = sys.version.split()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, python {py}")
    table = {}
    for scale in scales:
        p = _paths(args.work, scale)
        steps = [s for s in STEPS if not (s == "epoch" and args.no_epoch)]
        if args.steps:  # a re-run of some steps keeps the earlier run's scan cache, demo and split
            steps = [s for s in STEPS if s in args.steps.split(",")]
            for step in steps:
                table[(scale, step)] = run_step(step, args.work, scale)
                print(f"scale {scale} {step}: {json.dumps(table[(scale, step)])}", flush=True)
            continue
        if p["demo"].joinpath("DEMO.json").exists():  # drawing 140k images takes ~20 min: reuse, say so
            steps = [s for s in steps if s != "draw"]
            print(f"scale {scale}: reusing the demo drawn earlier in {p['demo']}")
        if p["truth"].exists():
            steps = [s for s in steps if s != "plant"]
        if p["scan_cache"].exists():  # a first scan must decode everything: start it from empty
            import shutil

            shutil.rmtree(p["scan_cache"])
        for step in steps:
            result = run_step(step, args.work, scale)
            table[(scale, step)] = result
            print(f"scale {scale} {step}: {json.dumps(result)}", flush=True)
    _print_table(table, scales)


def _print_table(table: dict, scales: list[float]) -> None:
    header = "| step | " + " | ".join(f"N={_n(table, s):,}: s / µs per image / peak RSS MB" for s in scales) + " |"
    print("\n" + header)
    print("|---|" + "---|" * len(scales))
    for step in STEPS:
        cells = []
        for s in scales:
            r = table.get((s, step))
            if r is None:
                cells.append("")
                continue
            n = r.get("images") or _n(table, s)
            cells.append(f"{r['seconds']:.1f} / {1e6 * r['seconds'] / n:,.0f} / {r['peak_rss_mb']:,}")
        print(f"| {step} | " + " | ".join(cells) + " |")
    for s in scales:
        d = table.get((s, "duplicates"))
        if d:
            print(
                f"N={_n(table, s):,}: planted {d['planted_found']}/{d['planted']} found (recall {d['recall']:.3f}), "
                f"false merges {d['false_merges']}, candidates equal to all-pairs: "
                f"{d.get('candidates_equal_all_pairs', 'not checked (too large)')}; search {d['seconds']:.2f} s "
                f"(hash {d['hash_seconds']:.2f} + candidates {d['candidate_seconds']:.2f} + verify "
                f"{d['verify_seconds']:.2f}); "
                f"bucket candidates {d['bucket_candidates'] / 1e6:.1f} M (raw signs: "
                f"{d['bucket_candidates_raw_signs'] / 1e6:.1f} M), pairs within 13 bits {d['pairs_within_radius']:,}; "
                f"{d['bits']} (raw signs: {d['bits_raw_signs']}); "
                f"farthest planted copy, bits: {d['farthest_copy_bits']}"
            )


def _n(table: dict, scale: float) -> int:
    for step in ("scan", "rescan", "duplicates"):  # a re-run of some steps may lack the scan
        if (scale, step) in table:
            return int(table[(scale, step)]["images"])
    return 0


if __name__ == "__main__":
    main()
