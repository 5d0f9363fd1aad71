"""Contract tests over every registered model preset (tiny variants train and export here)."""

import pytest
import torch

from train.losses import sed_loss
from train.models import MODEL_PRESETS, create_model
from train.models.gem import GeMFrequency
from train.models.sed_head import AttentionSEDHead

TINY = sorted(name for name in MODEL_PRESETS if name.endswith("_tiny"))


@pytest.mark.parametrize("name", TINY)
def test_forward_shapes_and_finite(name):
    model = create_model(name, num_classes=234)
    out = model(torch.randn(2, 1, 128, 316))
    assert out.logits.shape == (2, 234)
    assert out.frame_logits.shape[0] == 2 and out.frame_logits.shape[2] == 234
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("name", TINY)
def test_every_parameter_gets_a_gradient(name):
    model = create_model(name, num_classes=12)
    out = model(torch.randn(2, 1, 128, 316))
    loss, _ = sed_loss(out.logits, out.frame_logits, torch.rand(2, 12), torch.ones(2), 0.5)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_unknown_model_lists_presets():
    with pytest.raises(ValueError, match="b0_sed"):
        create_model("resnet_sed", num_classes=3)


def test_gem_runs_in_float32_under_bf16_autocast():
    gem = GeMFrequency(p=3.0)
    features = torch.rand(2, 8, 4, 10) * 50  # values whose cube overflows bf16 precision
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = gem(features.to(torch.bfloat16))
    assert pooled.dtype == torch.float32
    expected = features.to(torch.bfloat16).float().clamp(min=1e-6).pow(3).mean(dim=2).pow(1 / 3)
    torch.testing.assert_close(pooled, expected)


def test_sed_head_runs_in_float32_under_bf16_autocast():
    head = AttentionSEDHead(8, 5, dropout=0.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        clip, frames, weights = head(torch.randn(2, 8, 10).to(torch.bfloat16))
    assert clip.dtype == frames.dtype == weights.dtype == torch.float32
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 5))


def test_whole_model_keeps_pooling_fp32_under_autocast():
    model = create_model("b0_sed_tiny", num_classes=4).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 1, 128, 316))
    assert out.logits.dtype == torch.float32
    assert out.embedding.dtype == torch.float32


def test_frame_max_loss_adds_to_clip_loss():
    logits = torch.zeros(1, 3)
    frame_logits = torch.tensor([[[5.0, -5.0, 0.0], [-5.0, -5.0, 0.0]]])
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    with_aux, parts = sed_loss(logits, frame_logits, targets, torch.ones(1), 0.5)
    without_aux, _ = sed_loss(logits, frame_logits, targets, torch.ones(1), 0.0)
    assert with_aux == pytest.approx(float(without_aux + 0.5 * parts["frame_max_bce"]))
    assert parts["frame_max_bce"] < parts["clip_bce"]  # the max frame fits the targets better


def test_local_pretrained_weights_are_loaded(tmp_path):
    import timm

    source = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    model = create_model("b0_sed_tiny", num_classes=4, pretrained_file=str(tmp_path / "weights.pth"))
    expected = source.state_dict()["blocks.0.0.conv.weight"]
    torch.testing.assert_close(model.backbone.state_dict()["blocks.0.0.conv.weight"], expected)
    # the 3-channel stem is summed into the single log-mel channel
    torch.testing.assert_close(model.backbone.conv_stem.weight, source.conv_stem.weight.sum(dim=1, keepdim=True))


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained_file"):
        create_model("b0_sed_tiny", num_classes=4, pretrained_file=str(tmp_path / "absent.pth"))
