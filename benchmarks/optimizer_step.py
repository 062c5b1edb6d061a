"""Adam step time on facemix's VGG16 (15 M parameters): fused vs the for-each baseline, measured in one run.

Usage: python benchmarks/optimizer_step.py [--repeats 20]
Prints seconds per step for each implementation and the speed-up of fused over for-each.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from facemix.models import create


def time_steps(fused: bool, repeats: int) -> float:
    model = create("vgg16", num_classes=3, image_size=64)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.Adam(params, lr=1e-4, fused=fused, foreach=None if fused else True)
    optimizer.step()  # warm-up: allocates the moment buffers
    start = time.perf_counter()
    for _ in range(repeats):
        optimizer.step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    foreach = time_steps(False, args.repeats)
    fused = time_steps(True, args.repeats)
    print(
        f"Adam step, VGG16 (15.3 M params): for-each {foreach * 1000:.1f} ms, fused {fused * 1000:.1f} ms, "
        f"fused is {foreach / fused:.1f}x faster"
    )


if __name__ == "__main__":
    main()
