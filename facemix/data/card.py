"""The dataset card: what a merge contains, what it dropped, and where a model could cheat."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemix.data.manifest import Sample

PROBE_WARNING_MARGIN = 0.2  # balanced accuracy this far above chance from non-face cues alone is a shortcut


def _size_profile(samples: Sequence[Sample]) -> dict:
    w = np.array([s.width for s in samples])
    h = np.array([s.height for s in samples])
    return {
        "width": {"min": int(w.min()), "median": float(np.median(w)), "max": int(w.max())},
        "height": {"min": int(h.min()), "median": float(np.median(h)), "max": int(h.max())},
    }


def shortcut_warnings(samples: Sequence[Sample], probe: dict | None) -> list[str]:
    warnings = []
    sources_of = defaultdict(set)
    for s in samples:
        sources_of[s.label].add(s.source)
    for label, sources in sorted(sources_of.items()):
        if len(sources) == 1:
            warnings.append(
                f"class '{label}' comes from a single source ({next(iter(sources))}): a model can learn that source's "
                "look (size, compression, colour) instead of the class."
            )
    if probe and probe.get("balanced_accuracy") is not None:
        chance = probe["balanced_chance"]
        if probe["balanced_accuracy"] >= chance + PROBE_WARNING_MARGIN:
            warnings.append(
                f"image size, bytes per pixel and mean colour alone predict the class with balanced accuracy "
                f"{probe['balanced_accuracy']:.2f} (chance {chance:.2f}, {probe['folds']}-fold k-NN): a shortcut. "
                "Consider data.harmonize=true."
            )
    return warnings


@dataclass(frozen=True)
class Findings:
    """What the scan found besides the rows: files left out and why, copies with different classes, the formats per
    source, the shortcut probe (and its rerun on harmonised copies)."""

    bad_files: Sequence[tuple[str, str]]  # (path, reason): unreadable, skipped
    ignored_files: Sequence[tuple[str, str]]  # (path, reason): not images, not mapped
    label_conflicts: Sequence[list[str]]  # groups of copies carrying different classes, dropped
    formats: dict[str, Counter]  # source -> "JPEG RGB" -> images
    probe: dict | None
    probe_harmonized: dict | None = None
    source_sizes: Sequence[Sample] | None = None  # rows with the source files' own sizes (when harmonised)


def build_card(samples: Sequence[Sample], classes: Sequence[str], found: Findings) -> dict:
    """The card's facts as plain data (``dataset_card.json``)."""
    sized = found.source_sizes if found.source_sizes is not None else samples
    sources_of: dict[str, set[str]] = defaultdict(set)
    groups: Counter = Counter()
    for s in samples:
        if not s.parent:
            groups[s.dup_group] += 1
            sources_of[s.dup_group].add(s.source)
    dup_groups = [g for g, n in groups.items() if n > 1]
    cross_source = [g for g in dup_groups if len(sources_of[g]) > 1]
    return {
        "images": len(samples),
        "classes": list(classes),
        "counts": {
            "by_class_split": {
                f"{c}/{sp}": n for (c, sp), n in sorted(Counter((s.label, s.split) for s in samples).items())
            },
            "by_source_label": {
                f"{src}/{lab} -> {c}": n
                for (src, lab, c), n in sorted(Counter((s.source, s.source_label, s.label) for s in samples).items())
            },
            "by_class_split_source": {
                f"{c}/{sp}/{src}": n
                for (c, sp, src), n in sorted(Counter((s.label, s.split, s.source) for s in samples).items())
            },
        },
        "sizes_by_source": {
            src: _size_profile([s for s in sized if s.source == src]) for src in sorted({s.source for s in sized})
        },
        "formats_by_source": {src: dict(c) for src, c in sorted(found.formats.items())},
        "bad_files": [{"path": p, "reason": r} for p, r in found.bad_files],
        "ignored_files": [{"path": p, "reason": r} for p, r in found.ignored_files],
        "duplicates": {
            "groups": len(dup_groups),
            "images_in_groups": sum(groups[g] for g in dup_groups),
            "cross_source_groups": len(cross_source),
        },
        "label_conflicts_dropped": [list(g) for g in found.label_conflicts],
        "shortcut_probe": found.probe,
        "shortcut_probe_harmonized": found.probe_harmonized,
        "warnings": shortcut_warnings([s for s in samples if not s.parent], found.probe_harmonized or found.probe),
    }


def _sizes_section(card: dict) -> list[str]:
    lines = [
        "## Image sizes and formats by source",
        "",
        "| source | width min / median / max | height min / median / max | formats and modes |",
        "| --- | --- | --- | --- |",
    ]
    for src, prof in card["sizes_by_source"].items():
        w, h = prof["width"], prof["height"]
        fmts = ", ".join(f"{k}: {n}" for k, n in card["formats_by_source"].get(src, {}).items())
        lines.append(
            f"| {src} | {w['min']} / {w['median']:g} / {w['max']} | {h['min']} / {h['median']:g} / "
            f"{h['max']} | {fmts} |"
        )
    return lines


def _duplicates_section(card: dict) -> list[str]:
    d = card["duplicates"]
    conflicts = card["label_conflicts_dropped"]
    lines = [
        "## Duplicates",
        "",
        f"{d['groups']} groups of exact or near copies ({d['images_in_groups']} images, "
        f"{d['cross_source_groups']} across sources); each group sits in one split.",
        f"Label conflicts dropped: {len(conflicts)}"
        + (" (side by side in label_conflicts.png: judge whether they are really copies)." if conflicts else "."),
        "",
    ]
    lines += ["- " + " | ".join(f"`{p}`" for p in group) for group in conflicts[:20]]
    return lines + ([""] if conflicts else [])


def _probe_section(name: str, p: dict | None) -> list[str]:
    if not p or p.get("accuracy") is None:
        return []
    sampled = p.get("of_images", 0) > p["images"]
    sample = f" on a sample of {p['images']:,} of {p['of_images']:,} images" if sampled else ""
    return [
        f"## {name}",
        "",
        f"k-NN on width, height, bytes per pixel and mean colour, {p['folds']}-fold{sample}: "
        f"accuracy {p['accuracy']:.3f} (majority chance {p['chance']:.3f}), balanced accuracy "
        f"{p['balanced_accuracy']:.3f} (chance {p['balanced_chance']:.3f}).",
        "",
    ]


def card_markdown(card: dict) -> str:
    lines = ["# Dataset card", "", f"{card['images']} images in classes {', '.join(card['classes'])}.", ""]
    if card["warnings"]:
        lines += ["## Warnings", "", *(f"- **{w}**" for w in card["warnings"]), ""]
    lines += ["## Counts by source label", "", "| source / label -> class | images |", "| --- | --- |"]
    lines += [f"| {k} | {n} |" for k, n in card["counts"]["by_source_label"].items()]
    lines += ["", "## Counts by class and split", "", "| class / split | images |", "| --- | --- |"]
    lines += [f"| {k} | {n} |" for k, n in card["counts"]["by_class_split"].items()]
    lines += ["", *_sizes_section(card), "", *_duplicates_section(card)]
    lines += _probe_section("Shortcut probe", card.get("shortcut_probe"))
    lines += _probe_section("Shortcut probe after harmonising", card.get("shortcut_probe_harmonized"))
    lines += ["## Unreadable files (skipped)", ""]
    lines += [f"- `{b['path']}`: {b['reason']}" for b in card["bad_files"]] or ["none"]
    lines += ["", "## Ignored files", ""]
    lines += [f"- `{b['path']}`: {b['reason']}" for b in card["ignored_files"]] or ["none"]
    return "\n".join(lines) + "\n"


def write_card(card: dict, json_path: str | Path, markdown_path: str | Path) -> None:
    """The card's facts as JSON (what ``facemix.reports.dataset_card`` draws and ``facemix-scan`` prints) and as
    Markdown for people."""
    for path, text in ((Path(json_path), json.dumps(card, indent=2)), (Path(markdown_path), card_markdown(card))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
