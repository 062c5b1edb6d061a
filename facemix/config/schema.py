"""The config schema: each config group's keys with their types and ranges, checked before a run writes its first
file; defaults live in the YAML of each group, once.

Why a schema checked up front rather than checks where each value is used: a wrong value found at the first
training step (or after the manifest and card were written) costs minutes and leaves half a run behind. Every check
here runs on the composed config in well under a second, and all problems are reported together in one paragraph
that names each key. Why our own declarations rather than Hydra structured configs: OmegaConf's type errors name
types ("Value 'many' could not be converted to Integer"), not what the key must be, and cannot express ranges or
cross-field rules; the checks here can, and every message says what to type instead.

A key absent from the config being checked is skipped, so one schema serves every entry point (train, evaluate,
predict) and every preset (``model.options.dropout`` exists only where a head has dropout); each key declares where
it exists (``found_in``), and a unit test composes those configs, so a renamed key cannot switch its check off.
Cross-field checks (class weights against the classes, optimisers built on a stand-in, augmentation ops built) run
after the per-key ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from facemix.augment.tta import TTA_VIEWS
from facemix.data.pipeline import BALANCE_MODES
from facemix.data.split import FOLD_KEYS
from facemix.errors import FacemixConfigError, library_reason

_ABSENT = object()
PRECISIONS = ("auto", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "bf16-true", "16-true", "64-true", "64")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def whole(low: int, high: int | None = None) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= low and (high is None or v <= high)


def number(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not _is_number(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    return check


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices


def flag(v: Any) -> bool:
    return isinstance(v, bool)


def batches_limit(v: Any) -> bool:
    """Lightning's ``limit_*_batches``: a fraction in (0, 1] or a whole number of batches >= 1."""
    return (_is_int(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1)


def devices(v: Any) -> bool:
    if isinstance(v, str):
        return v == "auto" or v.replace(",", "").isdigit() or v == "-1"
    if isinstance(v, (list, ListConfig)):
        return len(v) > 0 and all(_is_int(d) and d >= 0 for d in v)
    return _is_int(v) and (v >= 1 or v == -1)


def split_fractions(v: Any) -> bool:
    """train / val / test fractions, and for a cross-validation fold ``folds`` (null or K >= 2) and ``fold``
    (0..K-1); with folds the held-out fold is the test part and train : val split the rest in their ratio."""
    fractions = {"train", "val", "test"}
    if not isinstance(v, (dict, DictConfig)) or not fractions <= set(v) <= fractions | set(FOLD_KEYS):
        return False
    values = [v[k] for k in ("train", "val", "test")]
    if not all(_is_number(x) and 0 <= x <= 1 for x in values):
        return False
    folds, fold = v.get("folds"), v.get("fold") or 0
    if folds is not None and not (_is_int(folds) and folds >= 2 and _is_int(fold) and 0 <= fold < folds):
        return False
    return v["train"] > 0 and v["val"] > 0 and abs(sum(values) - 1) < 1e-6


def class_names(v: Any) -> bool:
    if v is None:
        return True
    names = list(v) if isinstance(v, (list, ListConfig)) else None
    return (
        bool(names)
        and len(names) >= 2
        and len(set(names)) == len(names)
        and all(isinstance(n, str) and n.strip() for n in names)
    )


def pretrained(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return True
    if not isinstance(v, str):
        return False
    from facemix.models.pretrained import FALSE_WORDS, TRUE_WORDS

    return v.lower() in FALSE_WORDS | TRUE_WORDS or Path(v).expanduser().is_file()


def tags(v: Any) -> bool:
    return isinstance(v, (list, ListConfig)) and all(isinstance(t, (str, int, float)) for t in v)


@dataclass(frozen=True)
class Key:
    check: Callable[[Any], bool]
    must_be: str  # completes "must be ..."
    # where the key exists: the entry config and overrides that compose it (a test composes each and checks, so a
    # renamed key cannot switch its check off silently)
    found_in: tuple[str, ...] = ("train",)


@dataclass(frozen=True)
class Rule:
    key: str
    check: Callable[[Any], bool]
    requirement: str
    found_in: tuple[str, ...] = ("train",)


_WHOLE_BATCHES = "a fraction in (0, 1] or a whole number of batches >= 1"

# Each config group's keys with their type and range, next to each other; the defaults are in the group's YAML
# (conf/<group>/*.yaml), written once. ``found_in``: "<config> <overrides...>" that composes the key.
SCHEMA: dict[str, dict[str, Key]] = {
    "": {  # top-level keys of facemix-train
        "seed": Key(whole(0, 2**32 - 1), "a whole number from 0 to 2**32-1"),
        "calibrate": Key(flag, "true or false"),
        "average_top_k": Key(whole(0, 100), "0 (off) or the number of best checkpoints to average, >= 2"),
        "verbose": Key(flag, "true or false"),
        "tags": Key(tags, "a list of labels, e.g. [baseline,ci]"),
    },
    "data": {
        "batch_size": Key(whole(1), "a whole number >= 1 (images per step per device)"),
        "num_workers": Key(whole(0, 256), "a whole number >= 0 (0: load in the main process)"),
        "image_size": Key(optional(whole(16, 4096)), "null (the model's size) or a whole number of pixels, 16-4096"),
        "cache_size": Key(optional(whole(16, 4096)), "null or a whole number of pixels >= data.image_size"),
        "samples_per_epoch": Key(optional(whole(1)), "null or a whole number >= 1"),
        "epoch_size_factor": Key(number(0, 1000, low_open=True), "a number > 0"),
        "split": Key(
            split_fractions,
            "{train: a, val: b, test: c} with fractions in [0, 1] that add up to 1, train and val above 0 (val picks "
            "the best checkpoint); for cross-validation also folds: K >= 2 and fold: 0..K-1",
        ),
        "balance": Key(one_of(*BALANCE_MODES), f"one of {', '.join(BALANCE_MODES)}"),
        "root": Key(
            lambda v: isinstance(v, str) and v.strip() != "",
            "the folder that holds the images (data=folder reads any <class>/*.jpg tree: data.root=/path/to/images)",
        ),
        "classes": Key(class_names, "null or a list of at least 2 distinct class names"),
        "strict": Key(flag, "true or false"),
        "exclude": Key(
            optional(lambda v: isinstance(v, str) and Path(v).expanduser().is_file()),
            "null or an existing CSV with a path column (a cross-validation's label_issues.csv, edited)",
        ),
        "cache": Key(flag, "true or false"),
        "verify": Key(one_of("mtime", "sha1"), "mtime (trust size + modification time) or sha1 (hash every file)"),
        "keep_source_splits": Key(flag, "true or false"),
    },
    "data.offline": {
        "target_per_class": Key(optional(whole(1)), "null (the majority class's count) or a whole number >= 1"),
    },
    "data.duplicates": {
        "max_hamming": Key(whole(-1, 128), "a whole number of hash bits from -1 (exact copies only) to 128"),
        "min_correlation": Key(number(-1, 1), "a number in [-1, 1]"),
        "label_conflicts": Key(one_of("drop", "keep"), "drop or keep"),
    },
    "data.harmonize": {
        "enabled": Key(flag, "true or false"),
        "size": Key(whole(16, 4096), "a whole number of pixels, 16-4096"),
        "quality": Key(whole(1, 100), "a JPEG quality from 1 to 100"),
    },
    "tune": {
        "lr_find": Key(flag, "true or false"),
        "lr_find_apply": Key(flag, "true or false"),
        "reprobe": Key(flag, "true or false"),
        "lr_find_steps": Key(whole(12, 100_000), "a whole number of steps >= 12 (the finder needs a curve)"),
    },
    "model.finetune": {
        "freeze_epochs": Key(whole(0), "a whole number of epochs >= 0", ("train finetune=discriminative",)),
        "lr_mult": Key(number(1, 1e6), "a divisor >= 1 of the backbone's rate", ("train finetune=discriminative",)),
    },
    "model.mixup": {
        "mixup_alpha": Key(number(0, 100), "a Beta alpha >= 0 (0: no MixUp)", ("train regularization=mixup",)),
        "cutmix_alpha": Key(number(0, 100), "a Beta alpha >= 0 (0: no CutMix)", ("train regularization=mixup",)),
        "prob": Key(number(0, 1), "a probability in [0, 1]", ("train regularization=mixup",)),
    },
    "callbacks.weight_averaging": {
        "decay": Key(number(0, 1, low_open=True, high_open=True), "a decay in (0, 1)", ("train averaging=ema",)),
        "batch_norm_images": Key(
            whole(0), "a whole number >= 0 (0: keep the averaged statistics)", ("train averaging=ema",)
        ),
    },
    "loss": {
        "label_smoothing": Key(number(0, 1, high_open=True), "a number in [0, 1)"),
    },
    "report": {  # training's own report; facemix-evaluate has the same keys at its top level
        "tta": Key(one_of(*TTA_VIEWS), f"one of {', '.join(TTA_VIEWS)}"),
        "batch_size": Key(whole(1), "a whole number >= 1"),
        "gallery_size": Key(whole(0), "a whole number >= 0"),
        "bootstrap_resamples": Key(whole(0), "a whole number >= 0 (0: no intervals)"),
        "cam": Key(flag, "true or false"),
    },
    "model": {
        "freeze_backbone": Key(flag, "true or false"),
        "channels_last": Key(lambda v: flag(v) or v == "auto", "true, false or auto (a timed probe decides)"),
        "compile": Key(lambda v: flag(v) or v == "auto", "true, false or auto (on for CUDA only)"),
        "pretrained": Key(pretrained, "false, true (hub weights) or the path of an existing weights file"),
    },
    "model.optimizer": {
        "lr": Key(number(0, 10, low_open=True), "a learning rate > 0 (e.g. 1e-4)"),
        "weight_decay": Key(number(0, 10), "a number >= 0"),
        "momentum": Key(number(0, 1, high_open=True), "a number in [0, 1)", ("train optimizer=sgd",)),
    },
    "model.scheduler": {
        "factor": Key(number(0, 1, low_open=True, high_open=True), "a number in (0, 1)"),
        "patience": Key(whole(0), "a whole number of validations >= 0"),
        "warmup_fraction": Key(
            number(0, 1, high_open=True), "a fraction of the steps in [0, 1)", ("train scheduler=cosine",)
        ),
        "min_lr_ratio": Key(number(0, 1), "a number in [0, 1]", ("train scheduler=cosine",)),
        "pct_start": Key(
            number(0, 1, low_open=True, high_open=True), "a fraction in (0, 1)", ("train scheduler=onecycle",)
        ),
    },
    "model.options": {  # only where a head has them
        "dropout": Key(number(0, 1, high_open=True), "a number in [0, 1)"),
        "hidden": Key(
            lambda v: isinstance(v, (list, ListConfig)) and all(_is_int(h) and h >= 1 for h in v),
            "a list of layer widths >= 1 (e.g. [256, 256]; [] for none)",
        ),
    },
    "trainer": {
        "max_epochs": Key(lambda v: _is_int(v) and (v >= 1 or v == -1), "a whole number >= 1 (-1: no limit)"),
        "limit_train_batches": Key(batches_limit, _WHOLE_BATCHES),
        "limit_val_batches": Key(batches_limit, _WHOLE_BATCHES),
        "log_every_n_steps": Key(whole(1), "a whole number >= 1"),
        "check_val_every_n_epoch": Key(whole(1), "a whole number >= 1"),
        "accumulate_grad_batches": Key(whole(1), "a whole number >= 1", ()),  # (): added with +trainer.<key>
        "gradient_clip_val": Key(optional(number(0, 1e6)), "null or a number >= 0", ()),
        "precision": Key(
            lambda v: str(v) in PRECISIONS, f"one of {', '.join(p for p in PRECISIONS if '-' in p or p == 'auto')}"
        ),
        "devices": Key(devices, "a whole number >= 1, -1 (all), auto, or a list of device ids"),
        "num_nodes": Key(whole(1), "a whole number >= 1", ("train trainer=ddp",)),
    },
}
# the other commands' own top-level keys; facemix-evaluate's report keys are the report group's (conf/report/)
COMMAND_KEYS: dict[str, Key] = {
    **{name: replace(key, found_in=("evaluate", "crossval")) for name, key in SCHEMA["report"].items()},
    "batch_size": replace(SCHEMA["report"]["batch_size"], found_in=("evaluate", "predict")),
    "cam": replace(SCHEMA["report"]["cam"], found_in=("evaluate", "predict")),
    "tta": replace(SCHEMA["report"]["tta"], found_in=("evaluate", "predict", "crossval")),
    "top_k": Key(whole(1), "a whole number >= 1", ("predict",)),
    "atol": Key(number(0, 1, low_open=True), "a tolerance in (0, 1]", ("export",)),
    "format": Key(one_of("onnx", "torchscript"), "onnx or torchscript", ("export",)),
    "split": Key(one_of("train", "val", "test"), "train, val or test", ("evaluate",)),
    "num_workers": Key(whole(0, 256), "a whole number >= 0", ("evaluate", "predict", "crossval")),
    "per_class": Key(whole(1, 1000), "a whole number from 1 to 1000", ("preview",)),
    "scale": Key(
        number(0, 100, low_open=True), "a fraction of the real sets' sizes above 0 (0.1: 1,384 images)", ("demo",)
    ),
}


def _rules() -> tuple[Rule, ...]:
    """The schema as one flat list of dotted keys, in declaration order."""
    rules = [
        Rule(f"{group}.{name}" if group else name, key.check, key.must_be, key.found_in)
        for group, keys in SCHEMA.items()
        for name, key in keys.items()
    ]
    rules += [Rule(name, key.check, key.must_be, key.found_in) for name, key in COMMAND_KEYS.items()]
    return tuple(rules)


RULES = _rules()


def all_keys(cfg: DictConfig) -> list[str]:
    """Every dotted key of a composed config (not resolving anything), for "did you mean" hints."""

    def walk(node: Any, prefix: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        return [k for key, value in node.items() for k in (f"{prefix}{key}", *walk(value, f"{prefix}{key}."))]

    return walk(OmegaConf.to_container(cfg, resolve=False), "")


def _value(cfg: DictConfig, key: str) -> Any:
    """The resolved value at ``key``, ``_ABSENT`` where the config has no such key or it cannot be resolved here
    (``${hydra:...}`` outside a Hydra run); lists and mappings as plain containers."""
    try:
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
    except Exception:
        return _ABSENT
    if isinstance(value, (DictConfig, ListConfig)):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except Exception:
            return _ABSENT
    return value


def _missing_keys(node: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """Keys still ``???``, found without resolving anything (``OmegaConf.missing_keys`` resolves interpolations,
    and ``${hydra:...}`` cannot be resolved before Hydra runs)."""
    missing = []
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        if OmegaConf.is_missing(node, key):
            missing.append(f"{prefix}{key}")
        elif not OmegaConf.is_interpolation(node, key) and isinstance(node[key], (DictConfig, ListConfig)):
            missing += _missing_keys(node[key], f"{prefix}{key}.")
    return missing


def _averaging_problem(cfg: DictConfig) -> str | None:
    """``average_top_k=k`` averages the k best checkpoints: the checkpoint callback must keep that many."""
    k, kept = _value(cfg, "average_top_k"), _value(cfg, "callbacks.model_checkpoint.save_top_k")
    if not _is_int(k) or k < 2:
        return None
    kept = 1 if kept is _ABSENT or kept is None else kept
    if _is_int(kept) and 0 <= kept < k:
        return (
            f"average_top_k={k} averages the {k} best checkpoints, but callbacks.model_checkpoint.save_top_k={kept} "
            f"keeps {kept}; set callbacks.model_checkpoint.save_top_k={k}"
        )
    return None


def _sources_problems(cfg: DictConfig) -> list[str]:
    """The data sources resolve (a folder named with ``${...}`` does not: Hydra reads it as an interpolation) and
    each is a source (root, layout, a label_map of folder -> class name)."""
    node = OmegaConf.select(cfg, "data.sources", default=None)
    if node is None:
        return []
    try:
        sources = OmegaConf.to_container(node, resolve=True)
    except Exception as exc:
        return [
            f"data.sources cannot be resolved ({library_reason(exc, 200)}); a path with '${{' is read as an "
            "interpolation: rename or symlink the folder to a name without it"
        ]
    from facemix.data.manifest import specs_from_config

    try:
        specs_from_config(sources)
    except FacemixConfigError as exc:
        return [str(exc).rstrip(".")]
    return []


def _class_weights_problem(cfg: DictConfig) -> str | None:
    weights = _value(cfg, "loss.class_weights")
    if weights is _ABSENT or weights is None or weights == "auto":
        return None
    classes = _value(cfg, "data.classes")
    count = len(classes) if isinstance(classes, list) else None
    if not isinstance(weights, list) or not weights or not all(_is_number(w) for w in weights):
        shape = "null, auto, or a list of numbers" + (f" ({count}, one per class: {classes})" if count else "")
        return f"loss.class_weights={weights!r} must be {shape}"
    if not all(w > 0 for w in weights):
        return (
            f"loss.class_weights={weights} must all be above 0 (a negative weight rewards mistakes, all zeros "
            "make the loss 0/0 = NaN); use auto for inverse class frequency"
        )
    if count and len(weights) != count:
        return f"loss.class_weights has {len(weights)} values for {count} classes {classes}: give one per class"
    return None


def _ops_problems(cfg: DictConfig) -> list[str]:
    """Augmentation ops (``augment.<op>``, ``data.offline.recipe.<op>``) are built here, cheaply, so a misspelt
    argument stops the run now rather than after the scan."""
    problems = []
    for key in ("augment", "data.offline.recipe"):
        ops = _value(cfg, key)
        if ops is _ABSENT or ops is None:
            continue
        if not isinstance(ops, dict):
            problems.append(f"{key}={_show(ops)} must be a mapping of named ops ({{name: {{_target_: ..., ...}}}})")
            continue
        from facemix.augment.presets import build_ops

        try:
            build_ops(ops, key=key)
        except FacemixConfigError as exc:
            problems.append(str(exc).rstrip("."))
    return problems


def _optimization_problems(cfg: DictConfig) -> list[str]:
    """``model.optimizer`` / ``model.scheduler`` are built on a one-parameter stand-in, so an argument torch does not
    take (``+model.optimizer.betaz=...``) stops the run now, not at the first training step."""
    optimizer_cfg, scheduler_cfg = _value(cfg, "model.optimizer"), _value(cfg, "model.scheduler")
    if not isinstance(optimizer_cfg, dict) or "_target_" not in optimizer_cfg:
        return []
    import torch
    from hydra.utils import instantiate

    try:
        optimizer = instantiate(optimizer_cfg)([torch.nn.Parameter(torch.zeros(1))])
    except Exception as exc:
        return [f"model.optimizer ({optimizer_cfg['_target_']}) cannot be built: {library_reason(exc)}"]
    if not isinstance(scheduler_cfg, dict) or "_target_" not in scheduler_cfg:
        return []
    try:
        instantiate(scheduler_cfg)(optimizer, total_steps=10)
    except Exception as exc:
        return [f"model.scheduler ({scheduler_cfg['_target_']}) cannot be built: {library_reason(exc)}"]
    return []


def _show(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def config_problems(cfg: DictConfig, rules: Sequence[Rule] = RULES) -> list[str]:
    """Every broken rule as ``key=value must be ...``; empty when the config is fine."""
    problems = [f"{key} must be given ({key}=...)" for key in _missing_keys(cfg)]
    for rule in rules:
        value = _value(cfg, rule.key)
        if value is _ABSENT:
            continue
        if not rule.check(value):
            problems.append(f"{rule.key}={_show(value)} must be {rule.requirement}")
    for problem in (_class_weights_problem(cfg), _averaging_problem(cfg)):
        if problem is not None:
            problems.append(problem)
    problems += _ops_problems(cfg)
    problems += _sources_problems(cfg)
    if not any(p.startswith(("model.optimizer", "model.scheduler")) for p in problems):  # e.g. a negative lr:
        problems += _optimization_problems(cfg)  # already named by its rule; torch would only repeat it
    size, cache_size = _value(cfg, "data.image_size"), _value(cfg, "data.cache_size")
    if _is_int(size) and _is_int(cache_size) and cache_size < size:
        problems.append(f"data.cache_size={cache_size} must be >= data.image_size={size} (or null)")
    return problems


def validate_config(cfg: DictConfig, rules: Sequence[Rule] = RULES) -> None:
    """Raise one paragraph naming every wrong key, before anything is written."""
    problems = config_problems(cfg, rules)
    if problems:
        count = "1 config value is" if len(problems) == 1 else f"{len(problems)} config values are"
        raise FacemixConfigError(
            f"{count} wrong: {'; '.join(problems)}. Fix the override (or the config file that sets it) and start again."
        )
