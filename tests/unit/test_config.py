"""Configs compose in process (the lightning-hydra-template way) and the small pure functions around them."""

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from facemix.config.compose import register_resolvers, run_name
from facemix.models.preprocessing import IMAGENET_MEAN, resolve_preprocessing
from facemix.run.overrides import paths_as_override
from facemix.training.loggers import run_params, split_run_tag

register_resolvers()


def _compose(*overrides: str, config_name: str = "train"):
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="facemix.conf"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    ("overrides", "trainer"),
    [([], {"accelerator": "auto"}), (["trainer=cpu"], {"accelerator": "cpu", "devices": 1})],
)
def test_trainer_names_tell_the_truth(overrides, trainer):
    cfg = _compose(*overrides)
    assert {k: cfg.trainer[k] for k in trainer} == trainer


def test_debug_presets_compose():
    assert _compose("debug=fdr").trainer.fast_dev_run is True
    overfit = _compose("debug=overfit")
    assert overfit.trainer.overfit_batches == 2 and len(overfit.augment) == 0 and overfit.data.balance == "none"
    limit = _compose("debug=limit").trainer
    assert limit.limit_train_batches < 1 and limit.max_epochs == 3
    assert _compose("debug=profiler").trainer.profiler._target_.endswith("SimpleProfiler")


def test_logger_presets_compose():
    assert set(_compose().logger) == {"tensorboard", "csv"}
    assert set(_compose("logger=many").logger) == {"tensorboard", "csv", "mlflow", "wandb"}
    assert _compose("logger=wandb").logger.wandb.offline is True


def test_a_users_config_dir_adds_a_local_group_and_an_experiment(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "default.yaml").write_text("# @package _global_\nseed: 7\n")
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\ndata:\n  batch_size: 3\n")
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="facemix.conf"):
        cfg = compose("train", overrides=["experiment=mine", f"hydra.searchpath=[file://{tmp_path}]"])
    assert cfg.seed == 7 and cfg.data.batch_size == 3


def test_run_names_say_what_the_run_is_and_need_no_quoting():
    name = run_name(
        "train",
        "vgg16",
        "balanced",
        ["model=vgg16", "seed=1", "trainer.max_epochs=3", "hydra.run.dir=/x", "augment=keras", "data.root=/d"],
    )
    assert name == "vgg16-balanced-seed1-max_epochs3-keras"
    assert run_name("paper_balanced", "vgg16", "balanced_offline", ["experiment=paper_balanced"]) == (
        "paper_balanced-vgg16-balanced_offline"
    )
    odd = run_name("train", "m", "d", ["data.split={train: 0.9, val: 0.1}", "model.options.batch_norm=false"])
    assert odd == "m-d-split_train_0.9_val_0.1-batch_norm_false"
    assert run_name("train", "m", "d", ["calibrate=true"]) == "m-d-calibrate_true"  # a flag, not a group choice


def test_compare_takes_plain_paths_as_runs():
    assert paths_as_override(["out/a", "b c", "output_dir=x"]) == ["runs=['out/a','b c']", "output_dir=x"]
    assert paths_as_override(["runs=[a]"]) == ["runs=[a]"]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    odd = ["it's", "a b,c", "back\\slash", "x=y/z"]
    (override,) = OverridesParser.create().parse_overrides(paths_as_override(odd[:3]))
    assert override.value() == odd[:3]  # Hydra reads them back exactly


def test_metrics_split_into_sub_runs_that_share_a_chart():
    assert split_run_tag("train/loss") == split_run_tag("train/loss") == ("train", "loss")
    assert split_run_tag("val/f1_fake") == ("val", "f1_fake")
    assert split_run_tag("perf/data_wait_fraction") == ("train", "perf/data_wait_fraction")
    assert split_run_tag("lr-Adam") == ("train", "lr")
    assert split_run_tag("lr-Adam/backbone") == ("train", "lr/backbone")  # model.finetune: one curve per group
    assert split_run_tag("hparams/test_f1_macro") == ("", "hparams/test_f1_macro")


def test_run_params_hold_choices_overrides_seed_and_tags():
    choices = {"model": "vgg16", "debug": None, "hydra/launcher": "basic", "paths": "default"}
    overrides = [
        "seed=1",
        "model=vgg16",
        "hydra.run.dir=x",
        "model.optimizer.lr=0.1",
        "trainer.enable_progress_bar=false",
    ]
    params = run_params(choices, overrides, 1, ["a"])
    assert params == {"choice/model": "vgg16", "override/model.optimizer.lr": "0.1", "seed": 1, "tags": "a"}


def test_preprocessing_follows_the_backbone_and_explicit_values_win():
    scratch = resolve_preprocessing("vgg16", pretrained=False)
    assert (scratch.image_size, scratch.interpolation, scratch.mean) == (64, "area", IMAGENET_MEAN)
    pretrained = resolve_preprocessing("test_convnext", pretrained=True)
    assert (pretrained.image_size, pretrained.interpolation, pretrained.mean) == (160, "bicubic", (0.5, 0.5, 0.5))
    assert resolve_preprocessing("test_convnext", pretrained=False).mean == (0.5, 0.5, 0.5)  # statistics always
    mine = resolve_preprocessing("test_convnext", True, image_size=96, mean=[0.1] * 3, interpolation="area")
    assert (mine.image_size, mine.mean, mine.interpolation) == (96, (0.1, 0.1, 0.1), "area")
    assert resolve_preprocessing(None, pretrained=True).mean == IMAGENET_MEAN  # not a timm backbone
