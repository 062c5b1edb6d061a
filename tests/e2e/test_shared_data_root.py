"""Four training jobs started together on one empty data root, as a parallel launcher starts a sweep."""

import csv
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO, tiny_overrides

pytestmark = pytest.mark.slow
SEED_FREE_COLUMNS = ("source", "source_label", "label", "sha1", "width", "height", "dup_group", "source_split")


def test_four_jobs_on_an_empty_data_root_build_each_artefact_once(tmp_path):
    data_root = tmp_path / "data"
    procs = []
    for seed in (1, 2, 3, 4):
        overrides = [*tiny_overrides(data_root, tmp_path / str(seed)), "trainer.max_epochs=1"]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "facemix.train", "model=simple_cnn", f"seed={seed}", *overrides],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n\n".join(o[-3000:] for o in outputs)

    logs = "".join((tmp_path / str(seed) / "train.log").read_text() for seed in (1, 2, 3, 4))
    for what in ("the demo set", "the scan of", "the image cache"):  # "waiting for ... building X" is not a build
        assert len(re.findall(rf"\] - building {what}", logs)) == 1, what
    assert "waiting for another job" in logs or "built by another job" in logs

    manifests = []
    for seed in (1, 2, 3, 4):
        with open(tmp_path / str(seed) / "manifest.csv", newline="") as fh:
            manifests.append({r["path"]: tuple(r[c] for c in SEED_FREE_COLUMNS) for r in csv.DictReader(fh)})
    assert all(m == manifests[0] for m in manifests) and len(manifests[0]) > 200
    leftovers = [p for p in data_root.rglob("*") if ".partial-" in p.name or ".tmp-" in p.name]
    assert not leftovers
