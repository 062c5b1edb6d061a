"""Optimisers and schedules are config: every shipped option builds, trains a few real steps and moves the rate as
its file says; checkpoints of the flat-key era still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from facemix.config.compose import register_resolvers
from facemix.models.checkpoints import load_module
from facemix.models.module import DEFAULT_OPTIMIZER, DEFAULT_SCHEDULER, ClassifierModule
from facemix.models.schedules import cosine_with_warmup, one_cycle, plateau

CONF = Path(__file__).resolve().parents[2] / "conf"
register_resolvers()


def _model_config(*overrides: str) -> dict:
    with initialize_config_module("facemix.conf", version_base="1.3"):
        cfg = compose("train", overrides=["model=simple_cnn", *overrides])
    return OmegaConf.to_container(cfg.model, resolve=True)


def _module(model_cfg: dict) -> ClassifierModule:
    # what facemix.train resolves per machine / backbone: fixed here
    model_cfg = {k: v for k, v in model_cfg.items() if v is not None} | {"channels_last": False, "compile": False}
    return instantiate(
        model_cfg, _recursive_=False, _convert_="all", num_classes=3, class_names=["a", "b", "c"], image_size=32
    )


class _Images(Dataset):
    def __init__(self, n: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
        self.y = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], i


class _RateLog(pl.Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, *args) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def _fit(module: ClassifierModule, epochs: int = 2) -> list[float]:
    rates = _RateLog()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[rates],
    )
    loader = DataLoader(_Images(), batch_size=8)
    trainer.fit(module, loader, loader)
    return rates.rates


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_the_shipped_options_are_the_documented_ones():
    assert _names("optimizer") == ["adam", "adamw", "sgd"]
    assert _names("scheduler") == ["cosine", "none", "onecycle", "plateau"]


def test_the_module_defaults_are_the_default_config_files():
    """A module built without a config (a notebook, an old checkpoint) trains as the default run would."""
    cfg = _model_config("model=timm")  # a model file that sets no rate of its own
    assert cfg["optimizer"] == DEFAULT_OPTIMIZER
    assert {k: v for k, v in cfg["scheduler"].items() if k != "monitor"} == DEFAULT_SCHEDULER
    assert cfg["scheduler"]["monitor"] == "val/loss"  # plateau()'s own default


@pytest.mark.parametrize("optimizer", _names("optimizer"))
def test_every_optimizer_trains_with_its_configured_settings(optimizer):
    cfg = _model_config(f"optimizer={optimizer}", "scheduler=none", "model.optimizer.lr=0.02")
    module = _module(cfg)
    before = [p.detach().clone() for p in module.parameters()]
    rates = _fit(module, epochs=1)
    built = module.trainer.optimizers[0]
    assert type(built).__name__.lower() == optimizer
    assert rates == [0.02] * 4  # constant schedule, the overridden rate
    assert built.defaults["weight_decay"] == cfg["optimizer"]["weight_decay"]
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    if "fused" in built.defaults:  # Adam / AdamW / SGD on CPU: torch's fused kernel, unless the config says
        assert built.defaults["fused"] is True


def test_an_optimizer_argument_in_config_reaches_torch():
    module = _module(
        _model_config("optimizer=adam", "+model.optimizer.betas=[0.8,0.9]", "+model.optimizer.fused=false")
    )
    _fit(module, epochs=1)
    assert module.trainer.optimizers[0].defaults["betas"] == (0.8, 0.9)
    assert module.trainer.optimizers[0].defaults["fused"] is False


def test_cosine_warms_up_then_decays_to_its_floor():
    rates = _fit(_module(_model_config("scheduler=cosine", "model.scheduler.warmup_fraction=0.25")), epochs=4)
    assert len(rates) == 16
    peak = max(rates)
    assert rates.index(peak) == 4 and peak == pytest.approx(1e-3)  # 4 warm-up steps of 16
    assert rates[0] < rates[1] < rates[2] < rates[3] < peak
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] < 0.05 * peak


def test_one_cycle_peaks_at_the_configured_rate():
    rates = _fit(_module(_model_config("scheduler=onecycle", "model.optimizer.lr=0.01")), epochs=4)
    assert rates[0] == pytest.approx(0.01 / 25)
    assert max(rates) == pytest.approx(0.01, rel=0.05)
    assert rates[-1] < rates[0]


def test_plateau_lowers_the_rate_on_a_stalled_monitor():
    weights = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weights], lr=1.0)
    config = plateau(optimizer, total_steps=10, factor=0.5, patience=1)
    assert (config["monitor"], config["interval"], config["strict"]) == ("val/loss", "epoch", False)
    for loss in (1.0, 1.0, 1.0):
        config["scheduler"].step(loss)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_step_schedules_survive_a_one_step_run():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    for schedule in (cosine_with_warmup, one_cycle):
        config = schedule(optimizer, total_steps=1)
        optimizer.step()
        config["scheduler"].step()
        assert config["interval"] == "step"


def test_a_checkpoint_with_flat_adam_keys_still_loads(tmp_path):
    module = _module(_model_config())
    hparams = {k: v for k, v in module.hparams.items() if k not in ("optimizer", "scheduler")}
    hparams |= {"lr": 3e-4, "weight_decay": 1e-5, "plateau_factor": 0.2, "plateau_patience": 4}
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, path)
    loaded = load_module(path)
    assert loaded.hparams.optimizer["lr"] == 3e-4 and loaded.hparams.optimizer["weight_decay"] == 1e-5
    assert (loaded.hparams.scheduler["factor"], loaded.hparams.scheduler["patience"]) == (0.2, 4)
    original = module.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in loaded.state_dict().items())
