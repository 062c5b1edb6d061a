"""``auto`` speed settings: the fastest correct precision, memory format and compile choice for this machine.

Why per machine: on a CPU with bf16 units (AVX512_BF16 / AMX) bf16 autocast made VGG16 2.27x faster, on CPUs
without them it was 4-13x slower; channels_last was 1.18x faster for VGG16 on one CPU and slower on another; and
on the same AMX CPU MobileNetV2 at 64 px trained 1.4x slower in bf16 than in fp32 (depthwise convolutions). No
fixed default is right everywhere, so ``trainer.precision=auto`` offers what the hardware runs natively and
``model.channels_last=auto`` both memory formats, and a short timed probe of the real network at the run's size
picks among them, cached per machine, model and size so it runs once. Explicit values always win; every choice and
its reason is logged and written to ``summary.json``.

Why the probe can be trusted on a shared, noisy machine: it times the candidates back to back in several rotated
rounds and compares them per round (drift cancels in each ratio), and leaves the plain setting only when the other
wins in every round but one (``decide``); it spends at most ``PROBE_SHARE`` of the run's steps (a debug run or one of
a few batches does not probe); the run checks the promise against its first epoch and drops a cached choice it
could not confirm (``facemix.training.callbacks.ProbeCheck``); ``tune.reprobe=true`` times again.

The decisions are pure functions of a ``Machine`` description and of timings, so the CUDA branches and the noise
rules are unit-tested on a CPU (with a fake timer).
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
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


Timer = Callable[[], float]


def _time_step(net: nn.Module, x: torch.Tensor, precision: str, timer: Timer) -> float:
    """One forward + backward at ``precision``, timed by ``timer`` (tests inject a noisy one)."""
    device_type = x.device.type
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    start = timer()
    with torch.autocast(device_type, dtype=dtype, enabled=precision.endswith("-mixed")):
        loss = net(x).float().logsumexp(dim=1).mean()
    loss.backward()
    if device_type == "cuda":
        torch.cuda.synchronize()
    return timer() - start


def precision_candidates(machine: Machine, requested: str) -> list[str]:
    """What the probe may choose from: the requested precision, or for ``auto`` the precisions this hardware runs
    natively (a CPU with bf16 units: fp32 and bf16-mixed, timed against each other, since bf16 is not faster for
    every network, e.g. MobileNetV2's depthwise convolutions); on a GPU the rule of ``choose_precision``."""
    if requested != AUTO:
        return [requested]
    rule = str(choose_precision(machine).value)
    return ["32-true", rule] if machine.device == "cpu" and rule != "32-true" else [rule]


MIN_ROUNDS = 3  # fewer paired rounds cannot tell a gain from one noisy reading
MAX_ROUNDS = 7
PROBE_SHARE = 0.05  # the probe may cost at most this share of the run's expected training time


def robust_gain(base: Sequence[float], other: Sequence[float]) -> float:
    """How much faster ``other`` is than ``base`` in the round where it looked least good but one: per round the two
    were timed back to back, so the machine's drift cancels in each ratio; the second-worst ratio survives one
    noisy round either way (the worst with three rounds or fewer)."""
    ratios = sorted(b / o for b, o in zip(base, other, strict=True))
    return ratios[1] if len(ratios) > MIN_ROUNDS else ratios[0]


def decide(timings: dict, baseline, min_gain: float = MIN_GAIN):
    """The candidate to train with: the fastest (by median ratio) of those that beat ``baseline`` (the plainest,
    most accurate setting) by more than ``min_gain`` in every round but one; the baseline when none does."""
    winners = {c: robust_gain(timings[baseline], t) for c, t in timings.items() if c != baseline}
    winners = {c: g for c, g in winners.items() if g > 1 + min_gain}
    if not winners:
        return baseline
    return max(winners, key=lambda c: statistics.median(b / o for b, o in zip(timings[baseline], timings[c])))


@dataclass(frozen=True)
class ProbeResult:
    precision: str
    channels_last: bool
    images_per_s: float  # the chosen setting's step-only rate, re-checked against the run's first epoch
    reason: str


def _name(c: tuple[str, bool]) -> str:
    return f"{c[0]}{' + channels_last' if c[1] else ''}"


def probe_speed(
    build: Callable[[], nn.Module],
    image_size: int,
    batch_size: int,
    device: str,
    candidates: list[tuple[str, bool]],
    rounds: int = MIN_ROUNDS,
    timer: Timer = time.perf_counter,
) -> ProbeResult:
    """Time forward + backward of the real network for every (precision, channels_last) candidate after one
    warm-up step each (oneDNN / cuDNN pick and cache kernels per format and dtype), in rounds that visit all of
    them back to back (rotated, so no candidate always goes first), ``rounds`` times. ``decide`` keeps the first
    candidate unless another wins clearly."""
    net = build().to(device).train()
    batch = max(2, min(batch_size, 32))
    x = torch.randn(batch, 3, image_size, image_size, device=device)
    layout = {False: torch.contiguous_format, True: torch.channels_last}

    def step(c: tuple[str, bool]) -> float:
        net.to(memory_format=layout[c[1]])
        return _time_step(net, x.contiguous(memory_format=layout[c[1]]), c[0], timer)

    for c in candidates:  # warm-up, not kept
        step(c)
    timings: dict[tuple[str, bool], list[float]] = {c: [] for c in candidates}
    for r in range(max(rounds, MIN_ROUNDS)):
        for c in candidates[r % len(candidates) :] + candidates[: r % len(candidates)]:
            timings[c].append(step(c))
    chosen = decide(timings, candidates[0])
    median = {c: statistics.median(t) for c, t in timings.items()}
    rates = ", ".join(f"{_name(c)} {batch / median[c]:.1f}" for c in candidates)
    reason = f"probe of {len(timings[chosen])} rounds ({rates} img/s): {_name(chosen)}"
    if chosen != candidates[0]:
        reason += (
            f", {robust_gain(timings[candidates[0]], timings[chosen]):.2f}x {_name(candidates[0])} in its worse rounds"
        )
    return ProbeResult(chosen[0], chosen[1], batch / median[chosen], reason)


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

    def drop(self, key: str) -> None:
        """Forget one entry (a choice the run itself did not confirm): the next run probes again."""
        if self.path is None or key not in self._read():
            return
        from facemix.data.shared import exclusive, write_text_atomic

        try:
            with exclusive(self.path.with_name(self.path.name + ".lock"), f"the speed probe cache {self.path}"):
                entries = self._read()
                entries.pop(key, None)
                write_text_atomic(self.path, json.dumps(entries, indent=1, sort_keys=True))
        except OSError as exc:
            log.warning("could not update the speed probe cache %s (%s)", self.path, exc)

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


def multi_process(trainer_cfg) -> bool:
    """Whether the run starts more than one process: then each rank would probe on its own and might disagree."""
    several = _device_count(trainer_cfg.get("devices", 1)) != 1 or (trainer_cfg.get("num_nodes") or 1) > 1
    return several or "ddp" in str(trainer_cfg.get("strategy", ""))


@dataclass(frozen=True)
class ProbePlan:
    """What the run says about probing: its training steps (the probe may cost ``PROBE_SHARE`` of them), whether
    to ignore the cache (``tune.reprobe``), and a reason not to probe at all (a debug run)."""

    total_steps: int | None = None
    reprobe: bool = False
    skip: str | None = None

    def rounds(self, candidates: int) -> int:
        """Rounds the budget allows after one warm-up step per candidate (0: too short a run to pay for a probe)."""
        if self.total_steps is None:
            return MIN_ROUNDS
        affordable = int(PROBE_SHARE * self.total_steps / candidates) - 1
        return min(MAX_ROUNDS, affordable) if affordable >= MIN_ROUNDS else 0


@dataclass(frozen=True)
class Promise:
    """What a probe (or its cache entry) said the chosen setting trains at, for the run to check."""

    key: str
    cache_path: str | None
    images_per_s: float
    setting: str


class Speed(dict):
    """``{"precision": Choice, "channels_last": Choice, "compile": Choice}``, and the probe's promise."""

    promise: Promise | None = None


def _options(model_cfg) -> dict:
    raw = model_cfg.get("options")
    return OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else dict(raw or {})


def speed_settings(
    trainer_cfg, model_cfg, image_size: int, batch_size: int, num_classes: int, cache_path, plan: ProbePlan
) -> Speed:
    """``precision``, ``channels_last`` and ``compile`` for this run: explicit config values as given, ``auto``
    decided for this machine (precision and memory format by a timed probe where there is a choice, cached). A
    multi-process run never probes (its ranks must agree), nor does a debug run or one too short to pay for it:
    they use a cached probe, else the hardware rule and contiguous tensors (channels_last on a CPU for a network
    with depthwise convolutions, ``has_depthwise_convolutions``)."""
    machine = detect_machine(trainer_cfg.get("accelerator"))
    given = "set in the config"
    requested_precision, requested_format = str(trainer_cfg.get("precision")), model_cfg.get("channels_last")
    compile_ = model_cfg.get("compile")
    settings = {"compile": choose_compile(machine) if compile_ == AUTO else Choice(bool(compile_), given)}
    precisions = precision_candidates(machine, requested_precision)
    formats = [False, True] if requested_format == AUTO else [bool(requested_format)]
    candidates = [(p, f) for p in precisions for f in formats]

    def speed(precision: str, channels_last: bool, reason: str, promise: Promise | None = None) -> Speed:
        out = Speed(settings)
        out["precision"] = Choice(precision, reason if requested_precision == AUTO else given)
        out["channels_last"] = Choice(channels_last, reason if requested_format == AUTO else given)
        out.promise = promise
        return out

    if len(candidates) == 1:
        return speed(*candidates[0], choose_precision(machine).reason if requested_precision == AUTO else given)
    key = probe_key(machine, model_cfg.name, _options(model_cfg), image_size, batch_size, f"{precisions}x{formats}")
    cache = ProbeCache(cache_path)
    cached = None if plan.reprobe else cache.get(key)
    if cached is not None:
        precision, channels_last, *rate = cached.value
        promise = Promise(key, cache_path, rate[0], _name((precision, channels_last))) if rate else None
        return speed(precision, channels_last, cached.reason, promise)
    rounds = plan.rounds(len(candidates))
    why_not = "multi-process run (ranks must agree)" if multi_process(trainer_cfg) else plan.skip
    if why_not is None and rounds == 0:
        why_not = f"a run of {plan.total_steps} steps is too short to pay for a probe ({PROBE_SHARE:.0%} budget)"
    if why_not:
        unprobed = len(formats) > 1 and machine.device == "cpu" and has_depthwise_convolutions(model_cfg, image_size)
        layout = "channels_last (depthwise convolutions, on a CPU)" if unprobed else "contiguous tensors"
        return speed(precisions[-1], unprobed or formats[0], f"no probe: {why_not}; the hardware rule, {layout}")
    result = _probe(model_cfg, num_classes, image_size, batch_size, machine.device, candidates, rounds)
    cache.put(key, Choice([result.precision, result.channels_last, result.images_per_s], result.reason))
    promise = Promise(key, cache_path, result.images_per_s, _name((result.precision, result.channels_last)))
    return speed(result.precision, result.channels_last, result.reason, promise)


def _network(model_cfg, num_classes: int, image_size: int) -> nn.Module:
    """The network as the run builds it, random weights (what the probe times and the layout rule inspects)."""
    from facemix.models import create

    freeze = bool(model_cfg.get("freeze_backbone", False))
    return create(model_cfg.name, num_classes, image_size=image_size, freeze_backbone=freeze, **_options(model_cfg))


def has_depthwise_convolutions(model_cfg, image_size: int) -> bool:
    """Whether the network has depthwise convolutions (MobileNet, EfficientNet, ConvNeXt...): without a probe, a CPU
    run trains those channels_last, where oneDNN's depthwise kernels run faster (BENCHMARKS.md); other networks stay
    contiguous (VGG16 gained on one CPU and lost on another). Built on the meta device: no memory, no initialisation
    cost; a network that cannot be built there keeps the contiguous default."""
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            net = _network(model_cfg, 3, image_size)
    except (RuntimeError, NotImplementedError) as exc:
        log.info("layout rule: %s could not be built on the meta device (%s); contiguous", model_cfg.name, exc)
        return False
    return any(isinstance(m, nn.Conv2d) and 1 < m.groups == m.in_channels for m in net.modules())


def _probe(model_cfg, num_classes, image_size, batch_size, device, candidates, rounds: int) -> ProbeResult:
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the run's seeded initialisation must not depend on the cache
        result = probe_speed(
            lambda: _network(model_cfg, num_classes, image_size), image_size, batch_size, device, candidates, rounds
        )
    return replace(result, reason=f"{result.reason}; probe took {time.perf_counter() - started:.1f} s")


def log_speed(speed: Speed) -> None:
    """One line per distinct reason (precision and memory format usually share the probe's)."""
    by_reason: dict[str, list[str]] = {}
    for name, choice in speed.items():
        by_reason.setdefault(choice.reason, []).append(f"{name}={choice.value}")
    for reason, choices in by_reason.items():
        log.info("speed: %s (%s)", ", ".join(choices), reason)
