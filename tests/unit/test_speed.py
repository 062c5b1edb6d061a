"""``auto`` speed settings: the decisions as functions of the hardware they are given (so the CUDA branches are
tested on a CPU), and the channels_last probe with its per-machine cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from facemix.training.speed import (
    MIN_GAIN,
    Machine,
    ProbePlan,
    choose_compile,
    choose_precision,
    decide,
    detect_machine,
    probe_speed,
    speed_settings,
)

AVX2 = frozenset({"avx2", "fma", "sse4_2"})
LONG_RUN = ProbePlan(total_steps=2000)  # long enough to pay for a probe


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (Machine("cpu", "EPYC AVX2", AVX2), "32-true"),
        (Machine("cpu", "EPYC Genoa", AVX2 | {"avx512f", "avx512_bf16"}), "bf16-mixed"),
        (Machine("cpu", "Xeon Sapphire Rapids", AVX2 | {"amx_bf16", "amx_tile"}), "bf16-mixed"),
        (Machine("cpu", "Xeon Skylake", AVX2 | {"avx512f"}), "32-true"),  # AVX-512 without bf16 units
        (Machine("cuda", "NVIDIA A100", cuda_bf16=True), "bf16-mixed"),
        (Machine("cuda", "Tesla V100", cuda_bf16=False), "16-mixed"),
        (Machine("mps", "Apple MPS"), "32-true"),
    ],
    ids=lambda v: v.name if isinstance(v, Machine) else v,
)
def test_precision_follows_the_hardware(machine, expected):
    choice = choose_precision(machine)
    assert choice.value == expected and choice.reason


def test_the_probe_may_choose_only_what_the_hardware_runs_natively():
    from facemix.training.speed import precision_candidates

    assert precision_candidates(Machine("cpu", "Xeon", AVX2 | {"amx_bf16"}), "auto") == ["32-true", "bf16-mixed"]
    assert precision_candidates(Machine("cpu", "EPYC", AVX2), "auto") == ["32-true"]
    assert precision_candidates(Machine("cuda", "A100", cuda_bf16=True), "auto") == ["bf16-mixed"]
    assert precision_candidates(Machine("cpu", "Xeon", AVX2 | {"amx_bf16"}), "16-mixed") == ["16-mixed"]


def test_compile_only_on_cuda():
    assert choose_compile(Machine("cuda", "NVIDIA H100", cuda_bf16=True)).value is True
    assert choose_compile(Machine("cpu", "EPYC", AVX2)).value is False


def test_this_machine_is_described():
    machine = detect_machine("cpu")
    assert machine.device == "cpu" and machine.name and machine.threads >= 1


def _cfgs(precision="auto", channels_last="auto", compile="auto", devices=1):
    trainer = OmegaConf.create({"accelerator": "cpu", "devices": devices, "precision": precision})
    model = OmegaConf.create(
        {
            "name": "simple_cnn",
            "channels_last": channels_last,
            "compile": compile,
            "options": {},
            "freeze_backbone": False,
        }
    )
    return trainer, model


def test_explicit_values_always_win(tmp_path):
    trainer, model = _cfgs(precision="bf16-mixed", channels_last=True, compile=False)
    speed = speed_settings(trainer, model, 32, 8, 3, tmp_path / "probes.json", LONG_RUN)
    assert (speed["precision"].value, speed["channels_last"].value, speed["compile"].value) == (
        "bf16-mixed",
        True,
        False,
    )
    assert all(c.reason == "set in the config" for c in speed.values())
    assert not (tmp_path / "probes.json").exists()  # nothing probed


def test_the_probe_runs_once_per_machine_model_and_size_and_leaves_the_seed_alone(tmp_path):
    cache = tmp_path / "probes.json"
    trainer, model = _cfgs()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    first = speed_settings(trainer, model, 32, 8, 3, cache, LONG_RUN)
    assert torch.equal(torch.get_rng_state(), state)  # a probed and a cached run initialise the same weights
    assert isinstance(first["channels_last"].value, bool) and first["channels_last"].reason.startswith("probe of ")
    assert first["precision"].value in ("32-true", "bf16-mixed") and first["compile"].value is False
    (key,) = json.loads(cache.read_text())
    assert "simple_cnn" in key and "32px" in key

    again = speed_settings(trainer, model, 32, 8, 3, cache, LONG_RUN)
    assert again["channels_last"].value == first["channels_last"].value
    assert again["channels_last"].reason.endswith("(cached probe)")
    other_size = speed_settings(trainer, model, 48, 8, 3, cache, LONG_RUN)
    assert not other_size["channels_last"].reason.endswith("(cached probe)")


def test_ranks_of_a_multi_process_run_never_probe(tmp_path):
    trainer, model = _cfgs(devices=2)
    speed = speed_settings(trainer, model, 32, 8, 3, tmp_path / "probes.json", LONG_RUN)
    assert speed["channels_last"].value is False and "multi-process" in speed["channels_last"].reason
    assert not (tmp_path / "probes.json").exists()


BASE, CL = ("32-true", False), ("32-true", True)


def test_a_setting_is_chosen_only_for_a_clear_gain_in_every_round_but_one():
    assert decide({BASE: [1.0] * 5, CL: [1.0 - MIN_GAIN / 2] * 5}, BASE) == BASE  # within the drift
    assert decide({BASE: [1.0] * 5, CL: [1.0 - 2 * MIN_GAIN] * 5}, BASE) == CL
    assert decide({BASE: [1.0] * 5, ("bf16-mixed", False): [1.3] * 5}, BASE) == BASE  # slower: never
    # one round where the other setting looked 5.6x faster (the cached "79.0 vs 14.1 img/s"): noise, not a gain
    assert decide({BASE: [1.0, 1.0, 5.6, 1.0, 1.0], CL: [1.0, 1.02, 1.0, 0.99, 1.0]}, BASE) == BASE
    # a real 25 % gain seen through +-10 % noise in every round, one round lost to a busy moment: chosen
    assert decide({BASE: [1.0, 1.1, 0.95, 1.05, 1.0], CL: [0.8, 0.85, 1.2, 0.78, 0.8]}, BASE) == CL


class NoisyClock:
    """A fake ``perf_counter`` for the probe: each timed step of a setting takes its true cost times a seeded
    noise factor, with now and then a much slower step (another job on the shared cores)."""

    def __init__(self, costs: dict[bool, float], seed: int = 0, spike_every: int = 4) -> None:
        self.now, self.costs, self.rng, self.calls, self.spike_every = (
            0.0,
            costs,
            np.random.default_rng(seed),
            0,
            spike_every,
        )
        self.layout = False

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:  # the end of a step: advance by its (noisy) cost
            noise = self.rng.uniform(0.9, 1.1) * (6.0 if self.calls % (2 * self.spike_every) == 0 else 1.0)
            self.now += self.costs[self.layout] * noise
        return self.now


def _probe_with(clock: NoisyClock, rounds: int = 5):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 3))
    real_to = net.to

    def to(*args, **kwargs):  # which memory format the probe is timing now
        if "memory_format" in kwargs:
            clock.layout = kwargs["memory_format"] == torch.channels_last
        return real_to(*args, **kwargs)

    net.to = to
    return probe_speed(lambda: net, 16, 4, "cpu", [BASE, CL], rounds=rounds, timer=clock)


@pytest.mark.parametrize("seed", range(5))
def test_noise_cannot_lock_in_a_setting_that_is_not_faster(seed):
    result = _probe_with(NoisyClock({False: 1.0, True: 1.0}, seed))  # equal costs, spikes in some rounds
    assert (result.precision, result.channels_last) == BASE, result.reason


@pytest.mark.parametrize("seed", range(3))
def test_a_real_gain_survives_the_noise(seed):
    result = _probe_with(NoisyClock({False: 1.0, True: 0.7}, seed, spike_every=7))
    assert result.channels_last is True and "rounds" in result.reason


def test_short_and_debug_runs_do_not_probe_and_reprobe_times_again(tmp_path):
    trainer, model = _cfgs()
    cache = tmp_path / "probes.json"
    short = speed_settings(trainer, model, 32, 8, 3, cache, ProbePlan(total_steps=4))
    assert "too short to pay for a probe" in short["channels_last"].reason and not cache.exists()
    debug = speed_settings(trainer, model, 32, 8, 3, cache, ProbePlan(total_steps=5000, skip="a debug run"))
    assert "a debug run" in debug["channels_last"].reason and not cache.exists()
    assert ProbePlan(total_steps=2000).rounds(2) == 7 and ProbePlan(total_steps=160).rounds(2) == 3
    speed_settings(trainer, model, 32, 8, 3, cache, LONG_RUN)
    before = json.loads(cache.read_text())
    (key,) = before
    before[key]["reason"] = "a stale reading"
    cache.write_text(json.dumps(before))
    again = speed_settings(trainer, model, 32, 8, 3, cache, ProbePlan(total_steps=2000, reprobe=True))
    assert not again["channels_last"].reason.endswith("(cached probe)")
    assert json.loads(cache.read_text())[key]["reason"] != "a stale reading"  # replaced


@pytest.mark.parametrize(("name", "depthwise"), [("mobilenetv2", True), ("vgg16", False), ("simple_cnn", False)])
def test_unprobed_cpu_runs_train_depthwise_networks_channels_last(tmp_path, name, depthwise):
    """MobileNetV2 is built of depthwise-separable blocks, VGG16 and the small CNN of plain convolutions."""
    trainer, model = _cfgs()
    model.name = name
    short = speed_settings(trainer, model, 32, 8, 3, tmp_path / "probes.json", ProbePlan(total_steps=4))
    assert short["channels_last"].value is depthwise
    assert ("depthwise" in short["channels_last"].reason) is depthwise
    ranks = speed_settings(*_cfgs(devices=2)[:1], model, 32, 8, 3, tmp_path / "probes.json", LONG_RUN)
    assert ranks["channels_last"].value is depthwise  # every rank applies the same rule: they agree
    model.channels_last = False
    forced = speed_settings(trainer, model, 32, 8, 3, tmp_path / "probes.json", ProbePlan(total_steps=4))
    assert forced["channels_last"].value is False and forced["channels_last"].reason == "set in the config"
    assert not (tmp_path / "probes.json").exists()


def test_the_run_drops_a_cached_promise_its_first_epoch_did_not_keep(tmp_path):
    from facemix.training.callbacks import DataWaitMonitor, ProbeCheck
    from facemix.training.speed import ProbeCache, Promise

    cache = ProbeCache(tmp_path / "probes.json")
    from facemix.training.speed import Choice

    cache.put("k", Choice(["32-true", True, 500.0], "probe"))
    monitor = DataWaitMonitor()
    monitor.images, monitor.step = 1000, 10.0  # 100 img/s of training steps
    trainer = type("T", (), {"callbacks": [monitor], "is_global_zero": True})()
    ProbeCheck(Promise("k", str(tmp_path / "probes.json"), 500.0, "32-true + channels_last")).on_train_epoch_end(
        trainer, None
    )
    assert cache.get("k") is None  # 100 < 0.5 x 500: dropped, the next run probes again
    cache.put("k", Choice(["32-true", True, 150.0], "probe"))
    ProbeCheck(Promise("k", str(tmp_path / "probes.json"), 150.0, "x")).on_train_epoch_end(trainer, None)
    assert cache.get("k") is not None  # kept its promise
