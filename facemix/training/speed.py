"""``auto`` speed settings: the fastest correct precision, memory format and compile choice for this machine.

Why per machine: on a CPU with bf16 units (AVX512_BF16 / AMX) bf16 autocast made VGG16 2.27x faster, on CPUs
without them it was 4-13x slower; channels_last was 1.18x faster for VGG16 on one CPU and slower on another; and
on the same AMX CPU MobileNetV2 at 64 px trained 1.4x slower in bf16 than in fp32 (depthwise convolutions). No
fixed default is right everywhere, so ``trainer.precision=auto`` offers what the hardware runs natively and
``model.channels_last=auto`` both memory formats, and a short timed probe of the real network at the run's size
picks among them, cached per machine, model and size so it runs once. Explicit values always win; every choice and
its reason is logged and written to ``summary.json``.

The decisions are pure functions of a ``Machine`` description, so the CUDA branches are unit-tested on a CPU.
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)
AUTO = "auto"
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # native bf16 dot products; without them bf16 is emulated
MIN_GAIN = 0.05  # leave fp32 / contiguous only for a clear win (timings on shared CPUs drift by a few %)


@dataclass(frozen=True)
class Machine:
    device: str  # cpu | cuda | mps
    name: str  # CPU model or GPU name: part of the probe cache key
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    cuda_bf16: bool = False
    threads: int = 1


@dataclass(frozen=True)
class Choice:
    value: object
    reason: str


def _cpu_info() -> tuple[str, frozenset[str]]:
    """CPU model name and feature flags (Linux /proc/cpuinfo; elsewhere the platform name and no flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    name, flags = platform.machine(), frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and name == platform.machine():
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return name, flags


def detect_machine(accelerator: str | None) -> Machine:
    """What the run will train on: ``trainer.accelerator`` (auto: a CUDA GPU when there is one, else the CPU)."""
    accelerator = (accelerator or AUTO).lower()
    cpu_name, flags = _cpu_info()
    threads = torch.get_num_threads()
    wants_cuda = accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available())
    if wants_cuda and torch.cuda.is_available():
        return Machine("cuda", torch.cuda.get_device_name(0), flags, torch.cuda.is_bf16_supported(), threads)
    if accelerator == "mps" or (accelerator == AUTO and torch.backends.mps.is_available()):
        return Machine("mps", "Apple MPS", flags, False, threads)
    return Machine("cpu", cpu_name, flags, False, threads)


def choose_precision(machine: Machine) -> Choice:
    """bf16-mixed where the hardware computes bf16 natively, 16-mixed on GPUs without bf16, fp32 elsewhere."""
    if machine.device == "cuda":
        if machine.cuda_bf16:
            return Choice("bf16-mixed", f"{machine.name} supports bf16 (torch.cuda.is_bf16_supported)")
        return Choice("16-mixed", f"{machine.name} has no bf16; fp16 autocast with loss scaling")
    if machine.device == "cpu":
        native = sorted(machine.cpu_flags & CPU_BF16_FLAGS)
        if native:
            return Choice("bf16-mixed", f"the CPU computes bf16 natively ({', '.join(native)})")
        return Choice("32-true", "the CPU has no avx512_bf16 / amx_bf16: bf16 would be emulated, several times slower")
    return Choice("32-true", f"{machine.device}: fp32 (mixed precision not measured there)")


def choose_compile(machine: Machine) -> Choice:
    """torch.compile only on CUDA: on a CPU its warm-up (tens of seconds per shape) is rarely won back."""
    if machine.device == "cuda":
        return Choice(True, "CUDA: compiled kernels pay back their warm-up over an epoch (not measured by facemix)")
    return Choice(False, f"{machine.device}: compile warm-up is rarely won back in a CPU run; eager")


def _time_steps(net: nn.Module, x: torch.Tensor, precision: str, steps: int) -> list[float]:
    device_type = x.device.type
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    autocast = precision.endswith("-mixed")
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast(device_type, dtype=dtype, enabled=autocast):
            loss = net(x).float().logsumexp(dim=1).mean()
        loss.backward()
        if device_type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def precision_candidates(machine: Machine, requested: str) -> list[str]:
    """What the probe may choose from: the requested precision, or for ``auto`` the precisions this hardware runs
    natively (a CPU with bf16 units: fp32 and bf16-mixed, timed against each other, since bf16 is not faster for
    every network, e.g. MobileNetV2's depthwise convolutions); on a GPU the rule of ``choose_precision``."""
    if requested != AUTO:
        return [requested]
    rule = str(choose_precision(machine).value)
    return ["32-true", rule] if machine.device == "cpu" and rule != "32-true" else [rule]


def clear_winner(seconds: dict, baseline, min_gain: float = MIN_GAIN):
    """The fastest candidate when it beats ``baseline`` (the plainest, most accurate setting) by more than
    ``min_gain`` of its time; else the baseline: a few percent is what a shared machine drifts by."""
    fastest = min(seconds, key=seconds.__getitem__)
    return fastest if seconds[fastest] < seconds[baseline] * (1 - min_gain) else baseline


def probe_speed(
    build: Callable[[], nn.Module],
    image_size: int,
    batch_size: int,
    device: str,
    precisions: list[str],
    formats: list[bool],
    steps: int = 2,
) -> tuple[str, bool, str]:
    """Time forward + backward of the real network for every (precision, channels_last) candidate, interleaved
    (A B C D A B C D) so drift of a shared machine hits all alike, after one warm-up step each (oneDNN / cuDNN pick
    and cache kernels per format and dtype). The first candidate (the most accurate and plainest) is kept unless
    another is clearly faster. Returns (precision, channels_last, reason)."""
    net = build().to(device).train()
    batch = max(2, min(batch_size, 32))
    x = torch.randn(batch, 3, image_size, image_size, device=device)
    layout = {False: torch.contiguous_format, True: torch.channels_last}
    candidates = [(p, f) for p in precisions for f in formats]
    timings: dict[tuple[str, bool], list[float]] = {c: [] for c in candidates}
    for rounds in (1, steps):  # the first pass is the warm-up and is not kept
        for _ in range(rounds):
            for precision, channels_last in candidates:
                net.to(memory_format=layout[channels_last])
                taken = _time_steps(net, x.contiguous(memory_format=layout[channels_last]), precision, 1)
                if rounds == steps:
                    timings[(precision, channels_last)] += taken
    median = {c: statistics.median(t) for c, t in timings.items()}
    baseline = candidates[0]
    chosen = clear_winner(median, baseline)

    def name(c: tuple[str, bool]) -> str:
        return f"{c[0]}{' + channels_last' if c[1] else ''}"

    rates = ", ".join(f"{name(c)} {batch / median[c]:.1f}" for c in candidates)
    reason = f"probe ({rates} img/s): {name(chosen)}"
    if chosen != baseline:
        reason += f", {median[baseline] / median[chosen]:.2f}x {name(baseline)}"
    return chosen[0], chosen[1], reason


class ProbeCache:
    """Probe results by machine + torch + model + size + precision, in one JSON file that many jobs share (read
    without a lock, written under one, replaced atomically; a read-only location only skips saving)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def get(self, key: str) -> Choice | None:
        entry = self._read().get(key)
        return Choice(entry["value"], entry["reason"] + " (cached probe)") if entry else None

    def put(self, key: str, choice: Choice) -> None:
        if self.path is None:
            return
        from facemix.data.shared import exclusive, write_text_atomic

        try:
            with exclusive(self.path.with_name(self.path.name + ".lock"), f"the speed probe cache {self.path}"):
                entries = self._read()
                entries[key] = asdict(choice)
                write_text_atomic(self.path, json.dumps(entries, indent=1, sort_keys=True))
        except OSError as exc:  # a read-only data root: the probe runs again next time, nothing fails
            log.warning("could not save the speed probe to %s (%s); it will run again next time", self.path, exc)

    def _read(self) -> dict:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}


def probe_key(machine: Machine, model: str, options: dict, image_size: int, batch_size: int, candidates: str) -> str:
    opts = json.dumps(options, sort_keys=True, default=str)
    return (
        f"{machine.device}:{machine.name}:threads={machine.threads}:torch={torch.__version__}:{model}:{opts}:"
        f"{image_size}px:batch={min(batch_size, 32)}:{candidates}"
    )


def _device_count(devices) -> int:
    """Lightning's ``trainer.devices`` as a count: a list or "0,1" by its length, -1 (all) as -1, auto as one."""
    if isinstance(devices, (list, ListConfig)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    return int(text) if text.lstrip("-").isdigit() else 1


def _multi_process(trainer_cfg) -> bool:
    """Whether the run starts more than one process: then each rank would probe on its own and might disagree."""
    several = _device_count(trainer_cfg.get("devices", 1)) != 1 or (trainer_cfg.get("num_nodes") or 1) > 1
    return several or "ddp" in str(trainer_cfg.get("strategy", ""))


def speed_settings(
    trainer_cfg, model_cfg, image_size: int, batch_size: int, num_classes: int, cache_path: str | Path | None
) -> dict[str, Choice]:
    """``precision``, ``channels_last`` and ``compile`` for this run: explicit config values as given, ``auto``
    decided for this machine (precision and memory format by one timed probe where there is a choice, cached). A
    multi-process run never probes (its ranks must agree): it uses a cached probe, else the hardware rule and
    contiguous tensors."""
    from facemix.models import create

    machine = detect_machine(trainer_cfg.get("accelerator"))
    given = "set in the config"
    requested_precision = str(trainer_cfg.get("precision"))
    requested_format = model_cfg.get("channels_last")
    compile_ = model_cfg.get("compile")
    settings = {"compile": choose_compile(machine) if compile_ == AUTO else Choice(bool(compile_), given)}
    precisions = precision_candidates(machine, requested_precision)
    formats = [False, True] if requested_format == AUTO else [bool(requested_format)]

    def as_choices(precision: str, channels_last: bool, reason: str) -> dict[str, Choice]:
        return {
            "precision": Choice(precision, reason if requested_precision == AUTO else given),
            "channels_last": Choice(channels_last, reason if requested_format == AUTO else given),
        }

    if len(precisions) * len(formats) == 1:
        reason = choose_precision(machine).reason if requested_precision == AUTO else given
        return {**as_choices(precisions[0], formats[0], reason), **settings}
    raw = model_cfg.get("options")
    options = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else dict(raw or {})
    key = probe_key(machine, model_cfg.name, options, image_size, batch_size, f"{precisions}x{formats}")
    cache = ProbeCache(cache_path)
    cached = cache.get(key)
    if cached is not None:
        precision, channels_last = cached.value
        return {**as_choices(precision, channels_last, cached.reason), **settings}
    if _multi_process(trainer_cfg):
        reason = "multi-process run: no probe (ranks must agree); the hardware rule, contiguous tensors"
        return {**as_choices(precisions[-1], formats[0], reason), **settings}

    def build() -> nn.Module:  # the network as the run builds it, random weights (the timing is the same)
        freeze = bool(model_cfg.get("freeze_backbone", False))
        return create(model_cfg.name, num_classes, image_size=image_size, freeze_backbone=freeze, **options)

    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the run's seeded initialisation must not depend on the cache
        precision, channels_last, reason = probe_speed(
            build, image_size, batch_size, machine.device, precisions, formats
        )
    reason = f"{reason}; probe took {time.perf_counter() - started:.1f} s"
    cache.put(key, Choice([precision, channels_last], reason))
    return {**as_choices(precision, channels_last, reason), **settings}
