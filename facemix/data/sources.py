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


def _image_extensions() -> frozenset[str]:
    """What facemix reads: OpenCV's common formats, and whatever this Pillow decodes (AVIF in Pillow 11+; HEIC with
    the pillow-heif plug-in), so a format the libraries can read is never skipped for its extension alone."""
    from PIL import Image

    pillow = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"} | pillow)


IMAGE_EXTENSIONS = _image_extensions()
OS_FILES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
OS_FOLDERS = frozenset({"__macosx"})  # what a zip unpacked on a Mac holds beside the data (resource forks)
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
        keep = cfg.get("keep_splits")
        return cls(
            name,
            Path(str(cfg["root"])).expanduser(),
            str(cfg.get("layout", "imagefolder")),
            _label_map(name, cfg.get("label_map")),
            bool(keep) if keep is not None else None,
        )


def _label_map(source: str, given) -> dict[str, str] | None:
    """``{folder: class}``; folder names that are numbers (``{0: cat}`` from the command line) are the folder names
    as text. A class must be a name: null, a list, a mapping or an empty text is refused with what to write."""
    if given is None:
        return None
    where = f"data.sources.{source}.label_map"
    if not isinstance(given, Mapping):
        raise FacemixConfigError(
            f"{where} is {given!r}; it maps folder names to class names: {where}='{{with_mask: masked, "
            "without_mask: real}'. Leave a folder out to skip it."
        )
    mapping = {}
    for folder, target in given.items():
        if isinstance(target, bool) or not isinstance(target, (str, int, float)) or not str(target).strip():
            shown = "null" if target is None else repr(target)
            raise FacemixConfigError(
                f"{where} maps the folder {folder!r} to {shown}, which is not a class name. Give each folder a "
                f"class ({where}.{folder}=real), or leave the folder out of the label_map to skip it."
            )
        mapping[str(folder)] = str(target).strip()
    return mapping


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


def _is_os_folder(name: str) -> bool:
    return name.startswith(".") or name.lower() in OS_FOLDERS


def _walk_images(folder: Path, scan: SourceScan) -> Iterator[Path]:
    """Image files below ``folder`` in sorted order; symlinked folders are not followed (no loops)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_os_folder(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if _is_os_file(name):
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                scan.skipped.append((path, f"unknown extension {path.suffix or '(none)'}"))
                continue
            yield path


def _class_dirs(folder: Path) -> list[Path]:
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not _is_os_folder(p.name))
    by_case: dict[str, list[str]] = {}
    for d in dirs:
        by_case.setdefault(d.name.lower(), []).append(d.name)
    clash = [names for names in by_case.values() if len(names) > 1]
    if clash:
        raise FacemixConfigError(
            f"{folder} holds folders whose names differ only by case ({'; '.join(', '.join(n) for n in clash)}): "
            "they would become separate classes. Merge each pair into one folder, or map both to one class with "
            "the source's label_map (e.g. label_map='{Muffin: muffin, muffin: muffin}')."
        )
    return dirs


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
    """``<split>/<class>/`` when every top folder is a split name (train, val, test, ...), else ``<class>/``; a mix
    (``train/`` holding class folders beside flat class folders) is refused: it would make a class ``train``."""
    tops = _class_dirs(root)
    splits = [d for d in tops if d.name.lower() in SPLIT_ALIASES]
    if splits and len(splits) < len(tops) and any(_class_dirs(d) for d in splits):
        raise FacemixConfigError(
            f"{root} mixes split folders ({', '.join(d.name for d in splits)}, holding class folders) with class "
            f"folders ({', '.join(d.name for d in tops if d not in splits)}): split folders would become a class. "
            "Move the flat class folders into a split folder (or the split folders' classes out of them), or point "
            "the source's root at one of the two trees."
        )
    return _split_folders(root) if splits and len(splits) == len(tops) else _imagefolder(root)


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
    entries = _layout_entries(spec)
    tops = sorted(p for p in spec.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    scan.skipped += [(p, "an image at the top of the source root, outside any class folder") for p in tops]
    found_labels: set[str] = set()
    unmapped: set[str] = set()
    files_per_label: dict[str, int] = {}
    for label, split, folder in entries:
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
