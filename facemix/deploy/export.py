"""``facemix-export``: a deployable classifier (ONNX or TorchScript) plus its preprocessing.

The exported model maps a uint8 N x 3 x S x S batch of RGB pixels (resized to S x S) to class probabilities; the
normalisation (the sidecar's mean / std) is inside the exported graph. A parity check runs the exported file
(onnxruntime for ONNX) against PyTorch on real images from the run and fails when they differ beyond tolerance.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from facemix import __version__
from facemix.augment.presets import eval_transform
from facemix.data.images import load_rgb
from facemix.data.manifest import read_manifest
from facemix.errors import FacemixConfigError
from facemix.evaluation.ensemble import FoldEnsemble, load_classifier
from facemix.models.module import normalize_pixels
from facemix.run.rundir import CrossValidationDir, RunDir, fresh_dir

log = logging.getLogger("facemix.export")
FORMATS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}


class ExportParityError(RuntimeError):
    pass


class ProbabilityClassifier(torch.nn.Module):
    """The trained network with its calibration temperature and softmax on top: what a deployment wants to call."""

    def __init__(
        self,
        net: torch.nn.Module,
        pixel_mean: torch.Tensor,
        pixel_std: torch.Tensor,
        temperature: torch.Tensor | float = 1.0,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("pixel_mean", pixel_mean.clone())
        self.register_buffer("pixel_std", pixel_std.clone())
        self.register_buffer("temperature", torch.as_tensor(temperature, dtype=torch.float32).clone())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.net(normalize_pixels(image, self.pixel_mean, self.pixel_std))
        return (logits / self.temperature).softmax(dim=1)


class MeanOfClassifiers(torch.nn.Module):
    """A fold ensemble for deployment: the mean of its members' probabilities, uint8 pixels in."""

    def __init__(self, members: list[ProbabilityClassifier]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(image) for m in self.members]).mean(dim=0)


def deployable(module) -> torch.nn.Module:
    """What gets exported: the module's network with its normalisation, temperature and softmax inside (for a fold
    ensemble, each member's, averaged)."""
    if isinstance(module, FoldEnsemble):
        return MeanOfClassifiers([deployable(m) for m in module.members]).eval()
    return ProbabilityClassifier(module.net, module.pixel_mean, module.pixel_std, module.temperature).eval()


def _source_run(ckpt: str | Path, module, fmt: str) -> tuple[RunDir, Path]:
    """The run whose test images check parity, and the default export folder (a CV dir's own for an ensemble)."""
    if isinstance(module, FoldEnsemble):
        cv = CrossValidationDir(ckpt)
        return RunDir(cv.read_summary()["fold_runs"][0]), cv.export(fmt)
    run = RunDir.of_checkpoint(ckpt)
    return run, run.export(fmt)


def sample_batch(run: RunDir, image_size: int, interpolation: str = "area", count: int = 8) -> torch.Tensor:
    """Real preprocessed images from the run's test split (random pixels if the run has no manifest)."""
    transform = eval_transform(image_size, interpolation)
    if run.manifest.exists():
        rows = [s for s in read_manifest(run.manifest) if s.split == "test"][:count]
        if rows:
            return torch.stack([transform(image=load_rgb(s.path))["image"] for s in rows])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    return torch.stack([transform(image=im)["image"] for im in images])


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():  # the TorchScript-based exporter needs only `onnx` (no onnxscript)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=17,
        )


def _run_onnx(path: Path, batch: torch.Tensor) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"image": batch.numpy()})[0]


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, example), str(path))


def _run_torchscript(path: Path, batch: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.jit.load(str(path), map_location="cpu")(batch).numpy()


def _needs_onnx(fmt: str) -> None:
    if fmt not in FORMATS:
        raise FacemixConfigError(f"format={fmt} is not supported; choose one of {sorted(FORMATS)}.")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise FacemixConfigError(
                "format=onnx needs the onnx and onnxruntime packages: pip install 'facemix[export]'."
            ) from exc


def sidecar(module, ckpt: str | Path, path: Path, fmt: str, parity: dict) -> dict:
    """What a deployment needs beside the model file: classes, input layout, resize and normalisation, output."""
    size = int(module.hparams.image_size)
    interpolation = module.hparams.get("interpolation", "area")
    return {
        "format": fmt,
        "file": path.name,
        "facemix_version": __version__,
        "checkpoint": str(Path(ckpt).resolve()),
        "model": module.hparams.name,
        "members": len(module.members) if isinstance(module, FoldEnsemble) else 1,  # a fold ensemble: mean of K
        "class_names": module.class_names,
        "input": {
            "name": "image",
            "shape": ["batch", 3, size, size],
            "dtype": "uint8",
            "layout": "NCHW",
            "colour": "RGB",
            "resize": f"{size}x{size}, {interpolation} interpolation, aspect ratio not kept",
            "interpolation": interpolation,
            "normalisation": "inside the model: (pixel - 255 * mean) / (255 * std)",
            "mean": list(module.hparams.input_mean),
            "std": list(module.hparams.input_std),
        },
        "output": {
            "name": "probabilities",
            "shape": ["batch", len(module.class_names)],
            "softmax": True,
            "temperature": float(module.temperature),  # inside the model: softmax(logits / temperature)
        },
        "parity": parity,
    }


def export(ckpt: str | Path, fmt: str = "onnx", output_dir: str | Path | None = None, atol: float = 1e-4) -> Path:
    """Write the model in ``fmt`` with its sidecar JSON; fail (keeping both for inspection) when the exported file
    disagrees with PyTorch on real images beyond ``atol``."""
    _needs_onnx(fmt)
    module = load_classifier(ckpt)
    run, default_out = _source_run(ckpt, module, fmt)
    model = deployable(module)
    out = fresh_dir(Path(output_dir) if output_dir else default_out)
    path = out / FORMATS[fmt]
    batch = sample_batch(run, int(module.hparams.image_size), module.hparams.get("interpolation", "area"))
    with torch.inference_mode():
        expected = model(batch).numpy()
        module_probs = module(batch).softmax(dim=1).numpy()  # what evaluate / predict report, temperature included
    if not np.allclose(expected, module_probs, atol=1e-5):
        raise ExportParityError(f"the export wrapper of {ckpt} disagrees with the checkpoint's module; please report.")
    write, run_exported = (_export_onnx, _run_onnx) if fmt == "onnx" else (_export_torchscript, _run_torchscript)
    write(model, batch[:1], path)
    max_diff = float(np.abs(run_exported(path, batch) - expected).max())
    parity = {"images": len(batch), "max_abs_diff": max_diff, "atol": atol, "passed": max_diff <= atol}
    (out / f"{path.name}.json").write_text(json.dumps(sidecar(module, ckpt, path, fmt, parity), indent=2))
    if max_diff > atol:
        raise ExportParityError(
            f"{path} differs from PyTorch by up to {max_diff:.2e} (> atol {atol:.0e}) on {len(batch)} images; "
            "the export is kept for inspection but should not be shipped."
        )
    print(f"exported {path} (+ {path.name}.json); parity on {len(batch)} images: max |diff| {max_diff:.2e}")
    return path
