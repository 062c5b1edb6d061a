"""The config schema: every shipped config passes it, wrong values are named in one paragraph, every declared key
exists where it says it does (so a renamed key cannot switch its check off), cross-field checks build the real
objects."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from facemix.config.compose import compose_config, register_resolvers
from facemix.config.schema import COMMAND_KEYS, SCHEMA, config_problems, validate_config
from facemix.errors import FacemixConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
register_resolvers()


def _compose(*overrides: str, name: str = "train"):
    return compose_config(overrides, name)


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={p.stem}"] for p in sorted((CONF / "experiment").glob("*.yaml"))]
    + [[f"model={p.stem}"] for p in sorted((CONF / "model").glob("[!_]*.yaml"))]
    + [[f"optimizer={p.stem}"] for p in sorted((CONF / "optimizer").glob("*.yaml"))]
    + [[f"scheduler={p.stem}"] for p in sorted((CONF / "scheduler").glob("*.yaml"))]
    + [[f"augment={p.stem}"] for p in sorted((CONF / "augment").glob("*.yaml"))]
    + [[f"logger={p.stem}"] for p in sorted((CONF / "logger").glob("*.yaml"))]
    + [[f"debug={p.stem}"] for p in sorted((CONF / "debug").glob("*.yaml"))]
    + [[f"data={p.stem}", "data.root=/somewhere"] for p in sorted((CONF / "data").glob("*.yaml"))]
    + [[f"regularization={p.stem}"] for p in sorted((CONF / "regularization").glob("*.yaml"))]
    + [[f"averaging={p.stem}"] for p in sorted((CONF / "averaging").glob("*.yaml"))]
    + [[f"finetune={p.stem}"] for p in sorted((CONF / "finetune").glob("*.yaml"))]
    + [[f"callbacks={p.stem}"] for p in sorted((CONF / "callbacks").glob("*.yaml"))]
    + [[f"cv={p.stem}"] for p in sorted((CONF / "cv").glob("*.yaml"))]
    + [["trainer=ddp"], ["trainer=cpu"], ["hparams_search=optuna"], ["debug=overfit"]],
    ids=lambda o: " ".join(o),
)
def test_every_shipped_config_passes_its_own_rules(overrides):
    assert config_problems(_compose(*overrides)) == []


@pytest.mark.parametrize("name", ["evaluate", "predict", "export", "compare", "demo", "scan", "preview"])
def test_every_entry_config_passes_apart_from_its_required_keys(name):
    problems = config_problems(_compose(name=name))
    assert all("must be given" in p for p in problems), problems


def test_all_problems_in_one_paragraph_naming_each_key():
    cfg = _compose("data.batch_size=0", "loss.label_smoothing=2", "loss.class_weights=[1,1]")
    with pytest.raises(FacemixConfigError) as exc:
        validate_config(cfg)
    message = str(exc.value)
    assert message.startswith("3 config values are wrong") and "\n" not in message
    for key in ("data.batch_size=0", "loss.label_smoothing=2", "loss.class_weights has 2 values for 3 classes"):
        assert key in message


def test_booleans_are_not_numbers_and_infinities_are_not_learning_rates():
    assert config_problems(_compose("data.batch_size=true"))
    assert config_problems(_compose("model.optimizer.lr=inf"))
    assert config_problems(_compose("loss.class_weights=[1,nan,1]"))
    assert config_problems(_compose("trainer.max_epochs=-1")) == []  # Lightning's "no limit"


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("augment.affine.rotat=[-5,5]", "augment.affine (albumentations.Affine) cannot be built: Argument(s) 'rotat'"),
        ("augment.horizontal_flip=0.5", "augment.horizontal_flip is 0.5; each op is a mapping with a _target_"),
        ("data.offline.recipe.blur.blur_limit=[9,3]", "recipe.blur (albumentations.Blur) cannot be built: blur_limit"),
        ("augment.affine.rotate=wide", "augment.affine (albumentations.Affine) cannot be built: 2 validation errors"),
    ],
)
def test_a_broken_augmentation_op_is_found_before_the_run(override, expect):
    problems = config_problems(_compose("data=balanced_offline", f"+{override}" if "rotat=" in override else override))
    assert any(expect in p for p in problems), problems


@pytest.mark.parametrize(
    ("overrides", "expect"),
    [
        (["+model.optimizer.betaz=[0.9,0.99]"], "model.optimizer (torch.optim.Adam) cannot be built: "),
        (["optimizer=sgd", "model.optimizer.nesterov=true", "model.optimizer.momentum=0"], "Nesterov momentum"),
        (["+model.scheduler.cooldwn=3"], "model.scheduler (facemix.models.schedules.plateau) cannot be built"),
    ],
)
def test_an_optimizer_or_schedule_argument_torch_refuses_is_found_before_the_run(overrides, expect):
    problems = config_problems(_compose(*overrides))
    assert any(expect in p for p in problems), problems


def _declared():
    for group, keys in SCHEMA.items():
        for name, key in keys.items():
            yield (f"{group}.{name}" if group else name), key
    yield from COMMAND_KEYS.items()


@pytest.mark.parametrize("where", sorted({w for _, key in _declared() for w in key.found_in}))
def test_every_declared_key_exists_where_it_says(where):
    """A key renamed in the YAML (or the schema) fails here instead of silently losing its check."""
    name, *overrides = where.split()
    cfg = compose_config(overrides, name)
    keys = [k for k, key in _declared() if where in key.found_in]
    absent = [k for k in keys if OmegaConf.select(cfg, k, default="<absent>", throw_on_missing=False) == "<absent>"]
    assert keys and absent == []


def test_keys_no_shipped_config_holds_are_real_trainer_arguments():
    from pytorch_lightning import Trainer

    optional = [k for k, key in _declared() if not key.found_in]
    assert optional and all(k.startswith("trainer.") for k in optional)
    assert {k.removeprefix("trainer.") for k in optional} <= set(inspect.signature(Trainer.__init__).parameters)


def test_a_wrong_value_of_a_declared_key_is_refused():
    """The schema is what the checks read: a declared key with a wrong value is named."""
    assert any(p.startswith("report.gallery_size=-1") for p in config_problems(_compose("report.gallery_size=-1")))


RECIPE = ["finetune=discriminative", "averaging=ema", "regularization=mixup_cutmix", "augment=trivialaugment"]


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONF / "model").glob("[!_]*.yaml")))
def test_the_recipe_switches_compose_with_every_model(model):
    """Configs and the module: param groups need a backbone and a head, the mixer its alphas."""
    from hydra.utils import instantiate

    cfg = _compose(f"model={model}", *RECIPE)
    assert config_problems(cfg) == []
    module = instantiate(
        cfg.model, _recursive_=False, _convert_="all", num_classes=3, class_names=["a", "b", "c"], image_size=64,
        channels_last=False, compile=False, input_mean=[0.5] * 3, input_std=[0.5] * 3, interpolation="area",
    )  # fmt: skip
    assert module.mixer is not None and module.hparams.finetune["lr_mult"] == 10
