import os
from pathlib import Path

import pytest

# Never reach for the network in tests: hub look-ups otherwise retry for ~48 s; albumentations checks PyPI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from tests.helpers import REPO, TINY_DEMO_SCALE

SLOW_FOLDERS = ("e2e", "integration")  # they train through the real entry point; unit tests never do


def pytest_configure(config) -> None:
    """The library lines facemix quietens for users (``facemix.run.quiet``) are quiet in the suite too; a warning
    raised from facemix's own code fails the test that raised it, so a new one is noticed."""
    from facemix.run.quiet import WARNING_NOISE

    config.addinivalue_line("filterwarnings", r"error:::facemix\..*")
    for pattern in WARNING_NOISE:
        config.addinivalue_line("filterwarnings", f"ignore:{pattern}")


def pytest_collection_modifyitems(items) -> None:
    """Every end-to-end and integration test is ``slow`` by where it lives, so ``make test-fast`` (``-m 'not
    slow'``) is the unit suite without anyone having to remember a marker."""
    for item in items:
        if Path(str(item.fspath)).parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "mask").is_dir() or not (SHARED_DATA / "realfake").is_dir():
        pytest.skip(
            f"the real image samples are not at {SHARED_DATA} (they live beside the checkout, in ../shared/data)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A paths.data_dir holding the tiny demo set, drawn once per session."""
    from facemix.data.demo import write_demo

    root = tmp_path_factory.mktemp("data")
    write_demo(root / "demo_faces" / f"scale_{TINY_DEMO_SCALE}_seed_0", scale=TINY_DEMO_SCALE, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def trained_run(data_dir, tmp_path_factory) -> Path:
    """One tiny finished run (simple_cnn, 2 epochs, calibrated) shared by the evaluation / prediction / export
    tests."""
    from tests.helpers import run_train, tiny_overrides

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    run_train("model=simple_cnn", "data=balanced", "calibrate=true", *tiny_overrides(data_dir, run_dir))
    return run_dir


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A small training checkpoint (epoch 1, 64 KB of weights) at ``<tmp>/run/checkpoints/last.ckpt``."""
    import torch

    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(
        {"state_dict": {"w": torch.randn(256, 64)}, "hyper_parameters": {"name": "simple_cnn"}, "epoch": 1}, path
    )
    return path
