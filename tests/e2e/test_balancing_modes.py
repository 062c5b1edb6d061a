"""Every balancing / loss / regularisation variant trains through the real entry point; DDP sampler shares."""

import csv
import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
import yaml

from facemix.data.sampling import balanced_sampler
from tests.helpers import REPO, count_tiles, run_train, tiny_overrides

pytestmark = pytest.mark.slow


def _manifest(run_dir):
    with open(run_dir / "manifest.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "variant",
    [
        ("data=balanced_offline",),
        ("data=unbalanced", "loss.class_weights=auto"),
        ("data=unbalanced", "loss.class_weights=[1.0,5.0,1.0]"),
        ("data=balanced", "regularization=strong"),
        ("data=unbalanced", "regularization=dropout", "augment=keras"),
        ("data=balanced", "augment=none"),
    ],
    ids=lambda v: " ".join(v),
)
def test_variant_trains_one_tiny_epoch(data_dir, tmp_path, variant):
    run_dir = tmp_path / "run"
    run_train("model=simple_cnn", *tiny_overrides(data_dir, run_dir), "trainer.max_epochs=1", *variant)
    assert json.loads((run_dir / "classification_report.json").read_text())["macro avg"]["support"] > 0
    assert count_tiles(run_dir / "augment_preview.png") == 3 * 8
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    rows = _manifest(run_dir)
    if "data=balanced_offline" in variant:
        train = Counter(r["label"] for r in rows if r["split"] == "train")
        assert len(set(train.values())) == 1, train  # every class at the target
        assert any(r["parent"] for r in rows)
        originals = {r["path"]: r for r in rows if not r["parent"]}
        assert all(originals[r["parent"]]["split"] == "train" for r in rows if r["parent"])
    if "regularization=strong" in variant:  # the composed values are on record in the run's saved config
        assert "coarse_dropout" in config["augment"] and config["loss"]["label_smoothing"] == 0.1
        assert config["model"]["optimizer"]["weight_decay"] == 1.0e-4 and config["model"]["options"]["dropout"] == 0.5
        assert config["data"]["epoch_size_factor"] == 2.0


def test_val_and_test_rows_are_the_same_in_every_mode(data_dir, tmp_path):
    held_out = {}
    for mode in ("unbalanced", "balanced", "balanced_offline"):
        run_dir = tmp_path / mode
        run_train(
            "model=simple_cnn",
            f"data={mode}",
            *tiny_overrides(data_dir, run_dir),
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
        )
        held_out[mode] = sorted((r["path"], r["split"]) for r in _manifest(run_dir) if r["split"] in ("val", "test"))
    assert held_out["unbalanced"] == held_out["balanced"] == held_out["balanced_offline"]


DDP_PROBE = """
import json, sys
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from facemix.data.sampling import balanced_sampler

OUT = sys.argv[1]
TARGETS = [0] * 700 + [1] * 60 + [2] * 590


class Labels(Dataset):
    def __len__(self):
        return len(TARGETS)

    def __getitem__(self, i):
        return torch.ones(1), TARGETS[i], i


class Probe(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def training_step(self, batch, batch_idx):
        x, _, index = batch
        self.seen += index.tolist()
        return (self.w * x).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(Labels(), batch_size=50, sampler=balanced_sampler(TARGETS, 6000, seed=0))

    def on_train_end(self):
        with open(f"{OUT}/rank{self.global_rank}.json", "w") as fh:
            json.dump(self.seen, fh)


if __name__ == "__main__":
    pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(Probe())
"""


def test_ddp_ranks_draw_disjoint_shares_of_one_balanced_sequence(tmp_path):
    script = tmp_path / "ddp_probe.py"
    script.write_text(textwrap.dedent(DDP_PROBE))
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    targets = [0] * 700 + [1] * 60 + [2] * 590
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3000
    # together the ranks drew exactly the single-process sequence, each a different half of it
    assert Counter(ranks[0]) + Counter(ranks[1]) == Counter(balanced_sampler(targets, 6000, seed=0))
    assert ranks[0] != ranks[1]
    for seen in ranks:
        share = Counter(targets[i] for i in seen)
        assert all(abs(share[k] / len(seen) - 1 / 3) < 0.04 for k in range(3)), share
