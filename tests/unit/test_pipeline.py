"""The data pipeline as a plain function: typed specs from config, defaults that match the YAML, one call that
writes the manifest and the card, and a thin data module that serves what it wrote."""

from __future__ import annotations

import dataclasses
import re

import pytest
from omegaconf import OmegaConf

from facemix.config.compose import compose_config
from facemix.data.datamodule import FaceMixDataModule
from facemix.data.manifest import read_manifest
from facemix.data.pipeline import DataSpec, DuplicateSpec, build_run_data
from facemix.errors import FacemixConfigError
from facemix.run.rundir import RunDir
from tests.helpers import make_imagefolder

LOADER_KEYS = {"_target_", "image_size", "batch_size", "num_workers", "pin_memory", "root"}
LOADER_KEYS |= {"samples_per_epoch", "epoch_size_factor", "augment", "cache", "cache_size", "cache_dir"}


def _data_config(*overrides: str) -> dict:
    cfg = compose_config(["data=unbalanced", "paths.data_dir=/d", *overrides])
    return OmegaConf.to_container(cfg.data, resolve=False)


def test_a_spec_from_sources_alone_has_the_settings_facemix_train_composes():
    """The defaults are written once, in conf/data/unbalanced.yaml: a spec given only its sources reads them from
    there, so it equals what Hydra composes for facemix-train."""
    data = OmegaConf.to_container(compose_config(["data=unbalanced", "paths.data_dir=/d"]).data, resolve=True)
    spec = DataSpec.from_config({"sources": {"s": {"root": "/x"}}})
    assert dict(spec.split) == data["split"]
    assert (spec.keep_source_splits, spec.balance, spec.strict) == (
        data["keep_source_splits"],
        data["balance"],
        data["strict"],
    )
    assert dataclasses.asdict(spec.duplicates) == data["duplicates"]
    harmonize = {k: v for k, v in data["harmonize"].items() if k != "cache_dir"}
    assert {k: v for k, v in dataclasses.asdict(spec.harmonize).items() if k != "cache_dir"} == harmonize
    assert spec.offline.recipe == data["offline"]["recipe"] and spec.offline.target_per_class is None
    partial = DataSpec.from_config({"sources": {"s": {"root": "/x"}}, "duplicates": {"max_hamming": 3}})
    assert (
        partial.duplicates.max_hamming == 3
        and partial.duplicates.min_correlation == data["duplicates"]["min_correlation"]
    )
    no_default = [f.name for f in dataclasses.fields(DuplicateSpec) if f.default is not dataclasses.MISSING]
    assert no_default == []  # the numbers live in the YAML only


def test_every_shipped_data_config_makes_a_spec():
    for name in ("balanced", "unbalanced", "balanced_offline", "muffin_chihuahua"):
        data = OmegaConf.to_container(compose_config([f"data={name}", "paths.data_dir=/d"]).data, resolve=False)
        pipeline = {k: v for k, v in data.items() if k not in LOADER_KEYS}
        pipeline["demo"] = pipeline.get("demo") and {**pipeline["demo"], "root": "/d/demo"}
        pipeline["sources"] = {n: {**s, "root": "/d/x"} for n, s in pipeline["sources"].items()}
        pipeline["seed"] = 0
        pipeline["scan_cache"] = None
        for key in ("offline", "harmonize"):
            if isinstance(pipeline.get(key), dict):
                pipeline[key] = {k: v for k, v in pipeline[key].items() if k != "cache_dir"}
        spec = DataSpec.from_config(pipeline)
        assert spec.balance == ("offline" if name == "balanced_offline" else data["balance"])


@pytest.mark.parametrize(
    ("config", "expect"),
    [
        ({"sources": {"s": {"root": "/x"}}, "splitt": {}}, "data.splitt (did you mean split?)"),
        ({"sources": {"s": {"root": "/x"}}, "duplicates": {"max_haming": 3}}, "data.duplicates.max_haming (did"),
        ({"sources": {"s": {"root": "/x"}}, "batchsize": 8}, "data.batchsize (did you mean batch_size?)"),
        (
            {"sources": {"s": {"root": "/x"}}, "balance": "offline", "offline": {"recipe": None}},
            "data.balance=offline needs data.offline.recipe",
        ),
        ({"sources": {"s": {"root": "/x"}}, "balance": "weighted"}, "data.balance is 'weighted'"),
        ({"sources": {}}, "data.sources is empty"),
    ],
)
def test_a_wrong_pipeline_key_is_named(config, expect, tmp_path):
    with pytest.raises(FacemixConfigError, match=re.escape(expect)):
        FaceMixDataModule(tmp_path / "run", **config)


def test_build_run_data_writes_manifest_and_card_and_the_module_serves_them(tmp_path):
    root = make_imagefolder(tmp_path / "imgs", {"cat": 10, "dog": 6})
    spec = DataSpec.from_config({"sources": {"pets": {"root": str(root)}}, "seed": 3})
    built = build_run_data(spec, RunDir(tmp_path / "run"), progress=False)
    assert built.classes == ["cat", "dog"] and built.card["images"] == 16
    assert read_manifest(tmp_path / "run" / "manifest.csv") == built.samples
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"manifest.csv", "dataset_card.json", "dataset_card.md"}
    module = FaceMixDataModule(
        tmp_path / "run",
        image_size=32,
        num_workers=0,
        cache=False,
        sources={"pets": {"root": str(root)}},
    )
    with pytest.raises(RuntimeError, match="resolve_classes"):
        _ = module.class_names  # no I/O in a property
    module.prepare_data()  # the manifest exists: read, not rebuilt
    module.setup("fit")
    assert module.class_names == ["cat", "dog"]
    assert sum(len(module.datasets[s]) for s in ("train", "val", "test")) == 16
