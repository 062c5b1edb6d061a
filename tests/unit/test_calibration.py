"""Temperature scaling: the fit recovers a known temperature, the module and the export wrapper apply it, and
checkpoints from before calibration existed still load."""

import numpy as np
import pytest
import torch

from facemix.deploy.export import ProbabilityClassifier
from facemix.models.calibration import fit_temperature, nll
from facemix.models.module import ClassifierModule


def test_fit_recovers_the_temperature_the_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20_000, 3))
    probs = torch.softmax(torch.as_tensor(logits) / 2.5, dim=1).numpy()
    targets = np.array([rng.choice(3, p=p) for p in probs])
    t = fit_temperature(logits, targets)
    assert t == pytest.approx(2.5, rel=0.05)
    logits_t = torch.as_tensor(logits)
    assert nll(logits_t, torch.as_tensor(targets), t) < nll(logits_t, torch.as_tensor(targets), 1.0)


def _module():
    return ClassifierModule("simple_cnn", 3, ["real", "fake", "masked"], 32)


def test_module_and_export_wrapper_divide_logits_by_the_temperature():
    module = _module().eval()
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        plain = module(x)
        module.temperature.fill_(3.0)
        assert torch.allclose(module(x), plain / 3.0, atol=1e-6)
        wrapper = ProbabilityClassifier(module.net, module.pixel_mean, module.pixel_std, module.temperature).eval()
        assert torch.allclose(wrapper(x), (plain / 3.0).softmax(dim=1), atol=1e-6)
        assert module(x).argmax(1).tolist() == plain.argmax(1).tolist()  # calibration never changes a prediction


def test_a_checkpoint_without_temperature_loads_as_uncalibrated(tmp_path):
    from facemix.models.checkpoints import load_module

    module = _module()
    state = {k: v for k, v in module.state_dict().items() if k != "temperature"}
    path = tmp_path / "checkpoints" / "old.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": state, "hyper_parameters": dict(module.hparams)}, path)
    assert float(load_module(path).temperature) == 1.0
