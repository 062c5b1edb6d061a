"""Type and range checks of every user-facing config value, run before a run writes its first file.

Why a table rather than checks where each value is used: a wrong value found at the first training step (or after
the manifest and card were written) costs minutes and leaves half a run behind. Every rule here runs on the composed
config in well under a second, and all problems are reported together in one paragraph that names each key.

A rule whose key is absent from the config is skipped, so one table serves every entry point (train, evaluate,
predict) and every model / data preset (``model.options.dropout`` exists only where a head has dropout).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

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
    if not isinstance(v, (dict, DictConfig)) or set(v) != {"train", "val", "test"}:
        return False
    values = [v[k] for k in ("train", "val", "test")]
    if not all(_is_number(x) and 0 <= x <= 1 for x in values):
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
class Rule:
    key: str
    check: Callable[[Any], bool]
    requirement: str  # completes "must be ..."


RULES: tuple[Rule, ...] = (
    Rule("seed", whole(0, 2**32 - 1), "a whole number from 0 to 2**32-1"),
    Rule("data.batch_size", whole(1), "a whole number >= 1 (images per step per device)"),
    Rule("data.num_workers", whole(0, 256), "a whole number >= 0 (0: load in the main process)"),
    Rule("data.image_size", optional(whole(16, 4096)), "null (the model's size) or a whole number of pixels, 16-4096"),
    Rule("data.cache_size", optional(whole(16, 4096)), "null or a whole number of pixels >= data.image_size"),
    Rule("data.samples_per_epoch", optional(whole(1)), "null or a whole number >= 1"),
    Rule("data.epoch_size_factor", number(0, 1000, low_open=True), "a number > 0"),
    Rule(
        "data.split",
        split_fractions,
        "{train: a, val: b, test: c} with fractions in [0, 1] that add up to 1, train and val above 0 (val picks "
        "the best checkpoint)",
    ),
    Rule("data.balance", one_of("none", "sampler", "offline"), "one of none, sampler, offline"),
    Rule(
        "data.offline.target_per_class", optional(whole(1)), "null (the majority class's count) or a whole number >= 1"
    ),
    Rule(
        "data.duplicates.max_hamming", whole(-1, 128), "a whole number of hash bits from -1 (exact copies only) to 128"
    ),
    Rule("data.duplicates.min_correlation", number(-1, 1), "a number in [-1, 1]"),
    Rule("data.duplicates.label_conflicts", one_of("drop", "keep"), "drop or keep"),
    Rule("data.harmonize.enabled", flag, "true or false"),
    Rule("data.harmonize.size", whole(16, 4096), "a whole number of pixels, 16-4096"),
    Rule("data.harmonize.quality", whole(1, 100), "a JPEG quality from 1 to 100"),
    Rule(
        "data.root",
        lambda v: isinstance(v, str) and v.strip() != "",
        "the folder that holds the images (data=folder reads any <class>/*.jpg tree: data.root=/path/to/images)",
    ),
    Rule("data.classes", class_names, "null or a list of at least 2 distinct class names"),
    Rule("data.strict", flag, "true or false"),
    Rule("data.cache", flag, "true or false"),
    Rule("data.keep_source_splits", flag, "true or false"),
    Rule("loss.label_smoothing", number(0, 1, high_open=True), "a number in [0, 1)"),
    Rule("model.optimizer.lr", number(0, 10, low_open=True), "a learning rate > 0 (e.g. 1e-4)"),
    Rule("model.optimizer.weight_decay", number(0, 10), "a number >= 0"),
    Rule("model.optimizer.momentum", number(0, 1, high_open=True), "a number in [0, 1)"),
    Rule("model.scheduler.factor", number(0, 1, low_open=True, high_open=True), "a number in (0, 1)"),
    Rule("model.scheduler.patience", whole(0), "a whole number of validations >= 0"),
    Rule("model.scheduler.warmup_fraction", number(0, 1, high_open=True), "a fraction of the steps in [0, 1)"),
    Rule("model.scheduler.min_lr_ratio", number(0, 1), "a number in [0, 1]"),
    Rule("model.scheduler.pct_start", number(0, 1, low_open=True, high_open=True), "a fraction in (0, 1)"),
    Rule("model.freeze_backbone", flag, "true or false"),
    Rule("model.channels_last", lambda v: flag(v) or v == "auto", "true, false or auto (a timed probe decides)"),
    Rule("model.compile", lambda v: flag(v) or v == "auto", "true, false or auto (on for CUDA only)"),
    Rule("model.pretrained", pretrained, "false, true (hub weights) or the path of an existing weights file"),
    Rule("model.options.dropout", number(0, 1, high_open=True), "a number in [0, 1)"),
    Rule(
        "model.options.hidden",
        lambda v: isinstance(v, (list, ListConfig)) and all(_is_int(h) and h >= 1 for h in v),
        "a list of layer widths >= 1 (e.g. [256, 256]; [] for none)",
    ),
    Rule("trainer.max_epochs", lambda v: _is_int(v) and (v >= 1 or v == -1), "a whole number >= 1 (-1: no limit)"),
    Rule("trainer.limit_train_batches", batches_limit, "a fraction in (0, 1] or a whole number of batches >= 1"),
    Rule("trainer.limit_val_batches", batches_limit, "a fraction in (0, 1] or a whole number of batches >= 1"),
    Rule("trainer.limit_test_batches", batches_limit, "a fraction in (0, 1] or a whole number of batches >= 1"),
    Rule("trainer.log_every_n_steps", whole(1), "a whole number >= 1"),
    Rule("trainer.check_val_every_n_epoch", whole(1), "a whole number >= 1"),
    Rule("trainer.accumulate_grad_batches", whole(1), "a whole number >= 1"),
    Rule("trainer.gradient_clip_val", optional(number(0, 1e6)), "null or a number >= 0"),
    Rule(
        "trainer.precision",
        lambda v: str(v) in PRECISIONS,
        f"one of {', '.join(p for p in PRECISIONS if '-' in p or p == 'auto')}",
    ),
    Rule("trainer.devices", devices, "a whole number >= 1, -1 (all), auto, or a list of device ids"),
    Rule("trainer.num_nodes", whole(1), "a whole number >= 1"),
    Rule("calibrate", flag, "true or false"),
    Rule("verbose", flag, "true or false"),
    Rule("tags", tags, "a list of labels, e.g. [baseline,ci]"),
    # evaluate / predict / export
    Rule("batch_size", whole(1), "a whole number >= 1"),
    Rule("top_k", whole(1), "a whole number >= 1"),
    Rule("gallery_size", whole(0), "a whole number >= 0"),
    Rule("bootstrap_resamples", whole(0), "a whole number >= 0 (0: no intervals)"),
    Rule("cam", flag, "true or false"),
    Rule("atol", number(0, 1, low_open=True), "a tolerance in (0, 1]"),
    Rule("format", one_of("onnx", "torchscript"), "onnx or torchscript"),
    Rule("split", one_of("train", "val", "test"), "train, val or test"),
    Rule("num_workers", whole(0, 256), "a whole number >= 0"),
    Rule("per_class", whole(1, 1000), "a whole number from 1 to 1000"),
    Rule("scale", number(0, 100, low_open=True), "a fraction of the real sets' sizes above 0 (0.1: 1,384 images)"),
)


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
    if (weights := _class_weights_problem(cfg)) is not None:
        problems.append(weights)
    problems += _ops_problems(cfg)
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
