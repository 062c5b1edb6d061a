"""Layout adapters: turn a source folder into (file, source label, source split) rows.

Data sets come laid out by whoever collected them. Each adapter knows one layout, so the merge code downstream
never looks at folder structure again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from facemix.errors import FacemixConfigError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
OS_FILES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class SourceSpec:
    """One configured source: where it lives, how it is laid out, and how its labels map to merged classes."""

    name: str
    root: Path
    layout: str = "imagefolder"
    label_map: Mapping[str, str] | None = None  # None: folder names are the class names
    keep_splits: bool | None = None  # keep the source's own split folders; None: data.keep_source_splits decides

    @classmethod
    def from_config(cls, name: str, cfg: Mapping) -> SourceSpec:
        unknown = set(cfg) - {"root", "layout", "label_map", "keep_splits"}
        if unknown or "root" not in cfg:
            raise FacemixConfigError(
                f"data.sources.{name} must have a 'root' and may have 'layout', 'label_map' and 'keep_splits'; got "
                f"keys {sorted(cfg)}. Fix the source entry in your data config."
            )
        label_map = cfg.get("label_map")
        keep = cfg.get("keep_splits")
        return cls(
            name,
            Path(str(cfg["root"])).expanduser(),
            str(cfg.get("layout", "imagefolder")),
            dict(label_map) if label_map is not None else None,
            bool(keep) if keep is not None else None,
        )


@dataclass(frozen=True)
class SourceFile:
    path: Path
    source: str
    source_label: str
    source_split: str | None  # the source's own split, where its layout has one


@dataclass
class SourceScan:
    """What a scan found: usable files plus what it passed over, so nothing is dropped silently."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)
    unmapped_labels: dict[str, list[str]] = field(default_factory=dict)  # source -> folder names not in label_map


def _is_os_file(name: str) -> bool:
    return name.lower() in OS_FILES or name.startswith("._") or name.startswith(".")


def _walk_images(folder: Path, scan: SourceScan) -> Iterator[Path]:
    """Image files below ``folder`` in sorted order; symlinked folders are not followed (no loops)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if _is_os_file(name):
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                scan.skipped.append((path, f"unknown extension {path.suffix or '(none)'}"))
                continue
            yield path


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _imagefolder(root: Path) -> Iterator[tuple[str, str | None, Path]]:
    for class_dir in _class_dirs(root):
        yield class_dir.name, None, class_dir


def _split_folders(root: Path) -> Iterator[tuple[str, str | None, Path]]:
    for split_dir in _class_dirs(root):
        split = SPLIT_ALIASES.get(split_dir.name.lower())
        if split is None:
            raise FacemixConfigError(
                f"{split_dir} is not a split folder: layout 'split_folders' expects <root>/<split>/<class>/ with "
                f"split in {sorted(set(SPLIT_ALIASES))}. Use layout 'imagefolder' if {root} holds <class>/ folders."
            )
        for class_dir in _class_dirs(split_dir):
            yield class_dir.name, split, class_dir


def _kaggle_realfake(root: Path) -> Iterator[tuple[str, str | None, Path]]:
    for name in ("training_real", "training_fake"):
        if not (root / name).is_dir():
            raise FacemixConfigError(
                f"{root / name} is missing: layout 'kaggle_realfake' expects the Kaggle 'Real and Fake Face "
                "Detection' folders training_real/ and training_fake/ under the source root. Point the source's "
                "root at the folder that contains them."
            )
        yield name, None, root / name


def _auto(root: Path) -> Iterator[tuple[str, str | None, Path]]:
    """``<split>/<class>/`` when every top folder is a split name (train, val, test, ...), else ``<class>/``."""
    tops = _class_dirs(root)
    is_split = bool(tops) and all(d.name.lower() in SPLIT_ALIASES for d in tops)
    return _split_folders(root) if is_split else _imagefolder(root)


LAYOUTS: dict[str, Callable[[Path], Iterator[tuple[str, str | None, Path]]]] = {
    "auto": _auto,
    "imagefolder": _imagefolder,
    "split_folders": _split_folders,
    "kaggle_realfake": _kaggle_realfake,
}


def _layout_entries(spec: SourceSpec) -> list[tuple[str, str | None, Path]]:
    """(label, split, folder) for each class folder of a source; fails fast on a bad layout or missing root."""
    if spec.layout not in LAYOUTS:
        raise FacemixConfigError(
            f"data.sources.{spec.name}.layout is '{spec.layout}', which is not a known layout. "
            f"Choose one of {sorted(LAYOUTS)}."
        )
    if not spec.root.is_dir():
        raise FacemixConfigError(
            f"data.sources.{spec.name}.root points at {spec.root}, which is not a folder. Download the data set "
            "there or set the root (or data.root) to where it lives."
        )
    return list(LAYOUTS[spec.layout](spec.root))


def source_labels(spec: SourceSpec) -> list[str]:
    """The class folder names a source offers (cheap: lists folders, reads no image)."""
    return sorted({label for label, _, _ in _layout_entries(spec)})


def scan_source(spec: SourceSpec, scan: SourceScan | None = None) -> SourceScan:
    """List the usable files of one source; fail fast on config mistakes (missing root, unmatched label-map key)."""
    scan = scan if scan is not None else SourceScan()
    found_labels: set[str] = set()
    unmapped: set[str] = set()
    files_per_label: dict[str, int] = {}
    for label, split, folder in _layout_entries(spec):
        found_labels.add(label)
        if spec.label_map is not None and label not in spec.label_map:
            unmapped.add(label)
            continue
        before = len(scan.files)
        scan.files.extend(SourceFile(p, spec.name, label, split) for p in _walk_images(folder, scan))
        files_per_label[label] = files_per_label.get(label, 0) + len(scan.files) - before
    empty = sorted(label for label, n in files_per_label.items() if n == 0)
    if empty:
        raise FacemixConfigError(
            f"data.sources.{spec.name}: the class folder(s) {empty} under {spec.root} hold no image files. Add the "
            "images, or leave the folder out of the source's label_map."
        )
    if spec.label_map is not None:
        missing = sorted(set(spec.label_map) - found_labels)
        if missing:
            raise FacemixConfigError(
                f"data.sources.{spec.name}.label_map names {missing}, but {spec.root} (layout '{spec.layout}') has "
                f"only the class folders {sorted(found_labels)}. Fix the label_map keys to match the folder names."
            )
    if unmapped:
        scan.unmapped_labels[spec.name] = sorted(unmapped)
    return scan
