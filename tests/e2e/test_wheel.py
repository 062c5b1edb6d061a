"""facemix as users install it: a wheel in a fresh venv, console scripts, run from an empty directory."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, TINY_DEMO_SCALE

pytestmark = pytest.mark.slow
LEFT_OUT = {".git", ".venv", "outputs", "data", "build", "dist", ".pytest_cache", ".ruff_cache", "lightning_logs"}


def _run(cmd, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or os.environ
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the source tree (the checkout itself stays free of build leftovers)."""
    src = tmp_path_factory.mktemp("src") / "facemix"
    shutil.copytree(
        REPO,
        src,
        ignore=lambda d, names: [n for n in names if (Path(d) == REPO and n in LEFT_OUT) or n == "__pycache__"],
    )
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src], cwd=src)
    (built,) = dist.glob("facemix-*.whl")
    return built


def test_the_wheel_ships_the_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "facemix/conf/train.yaml" in names and "facemix/conf/model/vgg16.yaml" in names
    assert "facemix/conf/experiment/paper_balanced.yaml" in names
    shipped = {n.removeprefix("facemix/conf/") for n in names if n.startswith("facemix/conf/") and n.endswith(".yaml")}
    in_repo = {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml") if "local" not in p.parts}
    assert shipped == in_repo
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for command in ("train", "evaluate", "predict", "compare", "export", "scan", "preview", "demo"):
        assert f"facemix-{command} = " in scripts


def test_installed_wheel_trains_predicts_and_compares_from_an_empty_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp_path)
    (site,) = (venv / "lib").glob("python*/site-packages")
    # no network: the new venv sees the dev venv's installed packages (torch, lightning...) after its own
    (site / "zz_dev_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    bin_dir = venv / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "--no-deps", "-q", wheel], cwd=tmp_path)

    work = tmp_path / "empty"  # no repository, no ../shared
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    where = _run([bin_dir / "python", "-c", "import facemix; print(facemix.__file__)"], cwd=work, env=env).stdout
    assert Path(where.strip()).is_relative_to(venv), where  # the wheel's facemix, not the checkout's

    tiny = [
        f"data.demo.scale={TINY_DEMO_SCALE}",
        "data.image_size=32",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
    ]
    _run([bin_dir / "facemix-train", "model=simple_cnn", *tiny], cwd=work, env=env)
    (run_dir,) = (work / "outputs").glob("*/*")  # run dirs and data caches land in the working directory
    assert json.loads((run_dir / "summary.json").read_text())["class_names"] == ["real", "fake", "masked"]
    assert (work / "data" / "demo_faces" / f"scale_{TINY_DEMO_SCALE}_seed_0" / "DEMO.json").exists()
    assert not any(p.name in ("outputs", "data") for p in site.iterdir())

    photos = sorted((work / "data").rglob("WithMask/*.jpg"))[:3]
    predicted = _run(
        [bin_dir / "facemix-predict", f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}", f"inputs={photos[0].parent}"],
        cwd=work,
        env=env,
    )
    assert "facemix predictions" in predicted.stdout
    assert any((work / "outputs" / "predict").rglob("predictions.csv"))

    compared = _run([bin_dir / "facemix-compare", "outputs"], cwd=work, env=env)
    assert "| finished |" in compared.stdout
    assert len(list((work / "outputs" / "compare").rglob("comparison.md"))) == 1
