"""Training throughput on CPU: plain PyTorch loop vs the facemix LightningModule under the Trainer, plus
channels_last and bf16 autocast, and achieved GFLOP/s against the machine's measured fp32 matmul GFLOP/s.

Usage: python benchmarks/train_step.py [--models vgg16,mobilenetv2] [--size 128] [--batch 32] [--seconds 15] [--compile]

Every variant trains the same network (built from conf/model/<name>.yaml, as ``facemix.train`` builds it) on the
same synthetic batch, in one process, one after the other, each for at least ``--seconds`` after two warm-up steps.
The CPU speeds up over the first minute of work (allocator, oneDNN kernel caches), so the script first warms up and
times the baseline twice, first and last: (a) the plain loop (Adam fused, cross-entropy, contiguous fp32); ratios are
against the mean of the two. Lightning overhead = 1 - (b) / (a). FLOPs: forward FLOPs from
``torch.utils.flop_counter.FlopCounterMode`` x 3 (backward ~ 2x forward; the counter's own backward count
overstates depthwise convolutions).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from facemix.models.module import ClassifierModule, _fused_kwargs

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
CLASSES = ["real", "fake", "masked"]


def build_module(name: str, size: int, channels_last: bool | None = None) -> ClassifierModule:
    model = OmegaConf.load(CONF / f"{name}.yaml")
    model.pop("defaults", None)  # every model config is [_base, _self_]: the base first, the model over it
    cfg = OmegaConf.to_container(OmegaConf.merge(OmegaConf.load(CONF / "_base.yaml"), model))
    for key in ("_target_", "finetune", "mixup"):
        cfg.pop(key, None)
    # the network as configured, with the speed settings this script varies itself (auto is facemix.train's job)
    cfg["channels_last"] = bool(channels_last)
    cfg["compile"] = False
    for key in ("input_mean", "input_std", "interpolation"):  # null: the module's own defaults (facemix.train
        if cfg.get(key) is None:  # resolves them from the backbone; from scratch they are these defaults)
            cfg.pop(key, None)
    return ClassifierModule(num_classes=len(CLASSES), class_names=CLASSES, image_size=size, **cfg)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def step_flops(net: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return 3 * counter.get_total_flops()


def _timed(step, steps: int) -> float:
    step(), step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def plain_loop(
    net: torch.nn.Module, x, y, steps: int, channels_last: bool = False, bf16: bool = False, compile: bool = False
) -> float:
    """(a) what a user writes by hand; returns images/s (compile: its warm-up steps are not timed)."""
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if compile:
        net.compile()
    params = [p for p in net.parameters() if p.requires_grad]
    build = functools.partial(torch.optim.Adam, lr=1e-4)
    opt = build(params, **_fused_kwargs(build, params))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    net.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    return steps * len(x) / _timed(step, steps)


class _StepTimer(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0
        self.images = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx >= self.warmup:
            self.end = time.perf_counter()
            self.images += len(batch[1])


def lightning_loop(module: ClassifierModule, x, y, steps: int) -> float:
    """(b) the facemix module (metrics, logging included) under ``pl.Trainer``; returns images/s."""
    n = steps + 2
    data = TensorDataset(x.repeat(n, 1, 1, 1), y.repeat(n), torch.arange(n * len(y)))
    timer = _StepTimer(warmup=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=n,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, DataLoader(data, batch_size=len(y), shuffle=False))
    return timer.images / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg16,mobilenetv2")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10, help="about this long per timing (at least one step)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating plain / Lightning timings; medians")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants")
    args = parser.parse_args()
    pl.seed_everything(0, verbose=False)
    peak = matmul_gflops()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.size} px, fp32 "
        f"matmul {peak:.0f} GFLOP/s (2048^3)"
    )
    print("| model | variant | images/s | vs plain loop | GFLOP/s | % of matmul |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        x = torch.randn(args.batch, 3, args.size, args.size)
        y = torch.randint(0, len(CLASSES), (args.batch,))
        flops = step_flops(build_module(name, args.size, channels_last=False).net, x)

        def plain(name=name, x=x, y=y, steps=1, **kw) -> float:
            return plain_loop(build_module(name, args.size, False).net, x, y, steps, **kw)

        plain(steps=2)  # warm the machine up: the first minute of work runs slower
        steps = max(1, round(plain(steps=2) * args.seconds / args.batch))
        plains, lightnings = [], []
        for r in range(args.rounds):  # alternate A-B / B-A: the machine keeps speeding up, drift hits both alike
            order = ["plain", "lightning"] if r % 2 == 0 else ["lightning", "plain"]
            for which in order:
                if which == "plain":
                    plains.append(plain(steps=steps))
                else:
                    lightnings.append(lightning_loop(build_module(name, args.size, False), x, y, steps))
        results = {
            "(a) plain loop (median)": statistics.median(plains),
            "(b) facemix module + Trainer (median)": statistics.median(lightnings),
            "(c) plain, channels_last": plain(steps=steps, channels_last=True),
            "(c) plain, bf16 autocast": plain(steps=steps, bf16=True),
            "(c) plain, bf16 autocast + channels_last": plain(steps=steps, bf16=True, channels_last=True),
        }
        if args.compile:  # torch.compile: minutes of warm-up on a CPU, so only on request
            results["(c) plain, compile"] = plain(steps=steps, compile=True)
            results["(c) plain, compile + bf16 + channels_last"] = plain(
                steps=steps, compile=True, bf16=True, channels_last=True
            )
        print(
            f"<!-- {name}: {steps} steps per timing; plain {[round(r, 2) for r in plains]}, Lightning "
            f"{[round(r, 2) for r in lightnings]} img/s -->"
        )
        base = results["(a) plain loop (median)"]
        for variant, rate in results.items():
            gflops = flops * rate / args.batch / 1e9
            share = 100 * gflops / peak
            row = f"| {name} | {variant} | {rate:.2f} | {rate / base:.2f}x | {gflops:.0f} | {share:.0f} % |"
            print(row, flush=True)
        overhead = 1 - results["(b) facemix module + Trainer (median)"] / base
        print(f"| {name} | Lightning + facemix overhead | {100 * overhead:+.1f} % | | {flops / 1e9:.1f} GFLOP/step | |")


if __name__ == "__main__":
    main()
