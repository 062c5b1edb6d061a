"""The model zoo: built-ins, unknown names, pretrained weights (file / offline hub), entry-point plug-ins."""

import subprocess
import sys
import textwrap
import time

import pytest
import timm
import torch

from facemix.errors import FacemixConfigError
from facemix.models import create, list_models
from facemix.models.pretrained import PretrainedWeightsUnavailable


def test_builtins_are_listed():
    assert {"vgg16", "mobilenetv2", "simple_cnn", "timm"} <= set(list_models())


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("vgg16", {}),
        ("mobilenetv2", {}),
        ("simple_cnn", {}),
        ("simple_cnn", {"channels": [8, 16], "batch_norm": True}),
        ("timm", {"timm_name": "resnet10t"}),
        ("resnet10t", {}),
    ],
)
def test_every_builtin_gives_one_logit_per_class(name, options):
    model = create(name, num_classes=3, pretrained=False, image_size=32, **options).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_vgg16_is_the_studies_model():
    model = create("vgg16", num_classes=3, image_size=64)
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512 * 2 * 2, 256), (256, 256), (256, 3)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.head) == 2
    assert not any("pre_logits" in n for n, _ in model.named_modules())  # no 4096-wide timm pre-logits


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(FacemixConfigError, match=r"'nope' is not a registered model\. Available: .*mobilenetv2.*vgg16"):
        create("nope", num_classes=3)


def test_freeze_backbone_keeps_backbone_fixed_and_in_eval_mode():
    model = create("mobilenetv2", num_classes=3, image_size=32, freeze_backbone=True).train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.backbone.training and model.head.training


def test_pretrained_weights_from_a_local_file(tmp_path):
    source = timm.create_model("mobilenetv2_100", pretrained=False)
    torch.nn.init.constant_(source.conv_stem.weight, 0.125)
    path = tmp_path / "mobilenetv2_100.pth"
    torch.save(source.state_dict(), path)
    model = create("mobilenetv2", num_classes=3, pretrained=str(path), image_size=32)
    assert torch.equal(model.backbone.conv_stem.weight, source.conv_stem.weight)
    fresh = create("mobilenetv2", num_classes=3, pretrained=False, image_size=32)
    assert not torch.equal(fresh.backbone.conv_stem.weight, source.conv_stem.weight)


def test_missing_weights_file_names_the_key(tmp_path):
    with pytest.raises(FacemixConfigError, match="model.pretrained"):
        create("mobilenetv2", num_classes=3, pretrained=str(tmp_path / "missing.pth"))


def test_pretrained_true_without_network_fails_fast_and_names_the_file_alternative():
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable, match=r"model\.pretrained=/path/to/weights"):
        create("mobilenetv2", num_classes=3, pretrained=True)
    assert time.perf_counter() - start < 10


@pytest.mark.slow  # seconds, not milliseconds: in `make test`, not `make test-fast`
def test_entry_point_plugin_is_discovered(tmp_path):
    """A real installed distribution (dist-info with entry_points.txt) on sys.path registers its model."""
    (tmp_path / "tinyzoo.py").write_text(
        textwrap.dedent("""
        import torch.nn as nn

        def build(num_classes, pretrained=False, image_size=32, **kw):
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * image_size * image_size, num_classes))
    """)
    )
    dist = tmp_path / "tinyzoo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyzoo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[facemix.models]\ntiny_linear = tinyzoo:build\n")
    code = (
        "import torch, facemix.models as m; "
        "assert 'tiny_linear' in m.list_models(), m.list_models(); "
        "print(m.create('tiny_linear', num_classes=4, image_size=8)(torch.zeros(2, 3, 8, 8)).shape)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "torch.Size([2, 4])" in out.stdout
