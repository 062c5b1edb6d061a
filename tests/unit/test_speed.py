"""``auto`` speed settings: the decisions as functions of the hardware they are given (so the CUDA branches are
tested on a CPU), and the channels_last probe with its per-machine cache."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from facemix.training.speed import Machine, choose_compile, choose_precision, detect_machine, speed_settings

AVX2 = frozenset({"avx2", "fma", "sse4_2"})


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
    speed = speed_settings(trainer, model, 32, 8, 3, tmp_path / "probes.json")
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
    first = speed_settings(trainer, model, 32, 8, 3, cache)
    assert torch.equal(torch.get_rng_state(), state)  # a probed and a cached run initialise the same weights
    assert isinstance(first["channels_last"].value, bool) and first["channels_last"].reason.startswith("probe (")
    assert first["precision"].value in ("32-true", "bf16-mixed") and first["compile"].value is False
    (key,) = json.loads(cache.read_text())
    assert "simple_cnn" in key and "32px" in key

    again = speed_settings(trainer, model, 32, 8, 3, cache)
    assert again["channels_last"].value == first["channels_last"].value
    assert again["channels_last"].reason.endswith("(cached probe)")
    other_size = speed_settings(trainer, model, 48, 8, 3, cache)
    assert not other_size["channels_last"].reason.endswith("(cached probe)")


def test_ranks_of_a_multi_process_run_never_probe(tmp_path):
    trainer, model = _cfgs(devices=2)
    speed = speed_settings(trainer, model, 32, 8, 3, tmp_path / "probes.json")
    assert speed["channels_last"].value is False and "multi-process" in speed["channels_last"].reason
    assert not (tmp_path / "probes.json").exists()


def test_a_setting_is_chosen_only_for_a_clear_gain():
    from facemix.training.speed import MIN_GAIN, clear_winner

    base = ("32-true", False)
    assert clear_winner({base: 1.0, ("32-true", True): 1.0 - MIN_GAIN / 2}, base) == base  # within the drift
    assert clear_winner({base: 1.0, ("32-true", True): 1.0 - 2 * MIN_GAIN}, base) == ("32-true", True)
    assert clear_winner({base: 1.0, ("bf16-mixed", False): 1.3}, base) == base  # slower: never
