"""The training recipe's parts, each against what it promises: the fine-tuning schedule freezes then discriminates,
the EMA is the expected running average, mixed targets are distributions, TTA averages the views' logits, the
automatic augmentation policies change pictures per image, checkpoint averaging is a mean."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from facemix.augment.presets import train_transform
from facemix.augment.tta import views
from facemix.config.compose import augment_ops
from facemix.evaluation.inference import predict
from facemix.models.checkpoints import average_checkpoints, load_checkpoint
from facemix.models.module import ClassifierModule
from facemix.models.recipe import BatchMixer
from facemix.training.callbacks import EMA, warmup_ema

OPTIONS = {"channels": [4], "hidden": [8]}


class Pixels(Dataset):
    """Seeded random uint8 pictures with labels, as the loaders yield them: (image, target, index)."""

    def __init__(self, n: int = 32, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
        self.targets = torch.randint(0, 3, (n,), generator=g).tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.targets[i], i


CONSTANT = {"_target_": "facemix.models.schedules.constant", "_partial_": True}


def _module(**kwargs) -> ClassifierModule:
    torch.manual_seed(0)
    return ClassifierModule("simple_cnn", 3, ["a", "b", "c"], 16, options=OPTIONS, **{"scheduler": CONSTANT, **kwargs})


def _fit(module, epochs: int, callbacks=(), tmp_path=None) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        enable_model_summary=False, callbacks=list(callbacks), default_root_dir=tmp_path, limit_val_batches=1,
        num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, DataLoader(Pixels(), batch_size=8, shuffle=True), DataLoader(Pixels(8, seed=1), batch_size=8))
    return trainer


class Snapshots(pl.Callback):
    def __init__(self) -> None:
        self.backbone, self.head = [], []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        net = pl_module.net
        self.backbone.append([p.detach().clone() for p in net.backbone.parameters()])
        self.head.append([p.detach().clone() for p in net.head.parameters()])


def _moved(before, after) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_the_fine_tuning_schedule_freezes_the_backbone_then_trains_it_slower(tmp_path):
    module = _module(finetune={"freeze_epochs": 1, "lr_mult": 10}, optimizer={
        "_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-2, "weight_decay": 0.1})  # fmt: skip
    start = [p.detach().clone() for p in module.net.backbone.parameters()]
    head_start = [p.detach().clone() for p in module.net.head.parameters()]
    snaps = Snapshots()
    trainer = _fit(module, 2, [snaps], tmp_path)
    assert not _moved(start, snaps.backbone[0])  # epoch 0: frozen, weight decay included
    assert _moved(head_start, snaps.head[0])  # while the new head trains
    assert _moved(snaps.backbone[0], snaps.backbone[1])  # epoch 1: trained
    (optimizer,) = trainer.optimizers
    lrs = {g.get("name"): g["lr"] for g in optimizer.param_groups}
    assert lrs == pytest.approx({"head": 1e-2, "backbone": 1e-3})
    head = {id(p) for p in module.net.head.parameters()}
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == head  # the groups hold what they say


def test_without_a_schedule_every_layer_trains_from_the_first_epoch(tmp_path):
    module = _module()
    start = [p.detach().clone() for p in module.net.backbone.parameters()]
    snaps = Snapshots()
    _fit(module, 1, [snaps], tmp_path)
    assert _moved(start, snaps.backbone[0])


def test_the_ema_update_is_the_running_average_with_a_warming_decay():
    update = warmup_ema(decay=0.9, power=0.75)
    averaged, history = [torch.zeros(3)], []
    value = torch.zeros(3)
    for n in range(1, 30):
        value = torch.full((3,), float(n))
        update(averaged, [value], torch.tensor(n))
        history.append(averaged[0][0].item())
    expected, d_values = 0.0, []
    for n in range(1, 30):
        d = min(0.9, 1 - (1 + n) ** -0.75)
        d_values.append(d)
        expected = d * expected + (1 - d) * n
    assert history[-1] == pytest.approx(expected, rel=1e-6)
    assert d_values[0] < 0.5 and d_values[-1] == 0.9  # warms up, then capped


def test_ema_checkpoints_hold_the_average_and_the_raw_weights_beside_it(tmp_path):
    from pytorch_lightning.callbacks import ModelCheckpoint

    module = _module()
    saver = ModelCheckpoint(dirpath=tmp_path, filename="ema", monitor=None)  # during training, as runs save
    _fit(module, 2, [EMA(decay=0.9), saver], tmp_path)
    ckpt = load_checkpoint(tmp_path / "ema.ckpt")
    raw, averaged = ckpt["current_model_state"], ckpt["state_dict"]
    key = next(k for k in averaged if k.endswith("weight") and "net" in k)
    assert not torch.equal(raw[key], averaged[key])  # the average is not the last step's weights
    assert torch.equal(module.state_dict()[key], averaged[key])  # after fit the module holds the average


def test_mixed_targets_are_distributions_and_unmixed_ones_one_hot():
    x = torch.randn(5, 3, 16, 16)  # an odd batch: torchvision's MixUp / CutMix take it
    y = torch.tensor([0, 1, 2, 1, 0])
    mixed, soft = BatchMixer(3, mixup_alpha=0.4, cutmix_alpha=1.0)(x, y)
    assert mixed.shape == x.shape and torch.allclose(soft.sum(dim=1), torch.ones(5))
    assert (soft >= 0).all() and not torch.equal(mixed, x)
    same, hard = BatchMixer(3, mixup_alpha=0.4, prob=0.0)(x, y)
    assert torch.equal(same, x) and torch.equal(hard.argmax(dim=1), y) and torch.equal(hard.sum(dim=1), torch.ones(5))


def test_a_mixup_run_trains_with_soft_targets_class_weights_and_smoothing(tmp_path):
    module = _module(mixup={"mixup_alpha": 0.4, "cutmix_alpha": 1.0, "prob": 1.0}, class_weights=[1.0, 2.0, 0.5])
    module.hparams.label_smoothing = 0.1
    trainer = _fit(module, 1, tmp_path=tmp_path)
    assert np.isfinite(float(trainer.callback_metrics["train/loss"]))


def test_tta_averages_the_logits_of_the_views():
    module = _module().eval()
    data = Pixels(n=6)
    x = data.images
    with torch.inference_mode():
        plain, mirrored = module.logits(x), module.logits(x.flip(-1))
    flip = predict(module, data, batch_size=4, tta="flip").logits
    assert np.allclose(flip, ((plain + mirrored) / 2).numpy(), atol=1e-5)
    assert not np.allclose(flip, plain.numpy(), atol=1e-3)  # the mirror changed something
    assert len(views(x, "crops")) == 4 and views(x, "crops")[2].shape == x.shape


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment", "augmix"])
def test_automatic_augmentation_changes_each_picture_in_its_own_way(policy):
    transform = train_transform(augment_ops(policy), 32, seed=0)
    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    torch.manual_seed(0)
    outs = [transform(image=image)["image"] for _ in range(4)]
    assert all(o.shape == (3, 32, 32) and o.dtype == torch.uint8 for o in outs)
    assert len({o.numpy().tobytes() for o in outs}) == 4  # per call, not one draw for all


def test_checkpoint_averaging_is_the_mean_of_the_weights(tmp_path):
    paths = []
    for k in range(3):
        torch.save(
            {"state_dict": {"w": torch.full((2,), float(k)), "n": torch.tensor(7)}, "epoch": k},
            p := tmp_path / f"{k}.ckpt",
        )
        paths.append(p)
    out = average_checkpoints(paths, tmp_path / "avg.ckpt")
    ckpt = load_checkpoint(out)
    assert torch.equal(ckpt["state_dict"]["w"], torch.ones(2)) and int(ckpt["state_dict"]["n"]) == 7
    assert ckpt["epoch"] == 0 and ckpt["facemix_averaged_from"] == [str(p) for p in paths]


def test_the_modern_recipe_selects_its_groups_and_the_command_line_still_wins():
    """``recipe=modern`` is a preset of other groups, not a copy of their values: each group it selects composes
    as if chosen by hand, and a later choice on the command line replaces the preset's."""
    from facemix.config.compose import compose_config

    preset = compose_config(["recipe=modern"])
    by_hand = compose_config(["averaging=ema", "report.tta=flip"])
    for key in ("callbacks", "augment", "model", "loss", "report"):
        assert preset[key] == by_hand[key], key
    plain = compose_config([])
    assert plain.callbacks.get("weight_averaging") is None and plain.report.tta == "none"  # not the default
    mine = compose_config(["recipe=modern", "averaging=none", "report.tta=crops"])
    assert mine.callbacks.get("weight_averaging") is None and mine.report.tta == "crops"


def test_averaged_weights_get_batch_norm_statistics_of_their_own():
    """The running statistics after ``recompute_batch_norm`` are the plain mean / variance of what the layer saw
    (computed here by hand), not a blend of earlier steps'; layer momenta and modes are restored."""
    from facemix.training.callbacks import recompute_batch_norm

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(3, momentum=0.1)

        def logits(self, x):
            return self.norm(x.float())

    net = Net().eval()
    net.norm.running_mean.fill_(7.0)  # stale statistics, as averaged ones are
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 4, 4, generator=g) * 3 + 2,) for _ in range(4)]
    assert recompute_batch_norm(net, batches, max_images=24) == 24  # stops after three batches
    seen = torch.cat([b[0] for b in batches[:3]])
    per_batch_var = [b[0].transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=True) for b in batches[:3]]
    assert torch.allclose(net.norm.running_mean, seen.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(net.norm.running_var, torch.stack(per_batch_var).mean(dim=0), atol=1e-4)
    assert net.norm.momentum == 0.1 and not net.norm.training


def test_ema_validates_with_recomputed_statistics(tmp_path):
    """With recomputation the averaged network's statistics are those of its own weights on the train images;
    without it they are the blend the average carried."""
    from facemix.training.callbacks import recompute_batch_norm

    torch.manual_seed(0)
    options = {**OPTIONS, "batch_norm": True}
    module = ClassifierModule("simple_cnn", 3, ["a", "b", "c"], 16, options=options, scheduler=CONSTANT)
    _fit(module, 2, [EMA(decay=0.9, batch_norm_images=64)], tmp_path)  # after fit: the average, last validated
    norm = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    kept = norm.running_mean.clone()
    recompute_batch_norm(module, DataLoader(Pixels(), batch_size=8, shuffle=True), 64)
    assert torch.allclose(norm.running_mean, kept, atol=1e-5)  # what validation used is what the weights give
