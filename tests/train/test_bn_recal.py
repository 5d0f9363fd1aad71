"""BatchNorm recalibration re-estimates statistics on clean audio and changes the outputs."""

import pytest
import torch

from infer.frontend import FrontendSpec
from train.bn_recal import batchnorm_layers, recalibrate_batchnorm
from train.frontend import TorchFrontend
from train.models import create_model


def test_recalibration_changes_outputs_and_statistics():
    torch.manual_seed(0)
    model = create_model("b0_sed_tiny", num_classes=5).eval()
    frontend = TorchFrontend(FrontendSpec())
    probe = frontend(torch.randn(2, 160000) * 0.1)
    with torch.no_grad():
        before = model(probe).logits.clone()
    stats_before = batchnorm_layers(model)[0].running_mean.clone()

    clean = [torch.randn(4, 160000) * 0.05 for _ in range(3)]
    seen = recalibrate_batchnorm(model, frontend, clean)

    assert seen == 12
    assert not model.training
    assert not torch.allclose(batchnorm_layers(model)[0].running_mean, stats_before)
    with torch.no_grad():
        after = model(probe).logits
    assert (after - before).abs().max() > 1e-3  # skipping recalibration would ship other outputs


def test_recalibration_restores_momentum():
    model = create_model("b0_sed_tiny", num_classes=5)
    momenta = [layer.momentum for layer in batchnorm_layers(model)]
    recalibrate_batchnorm(model, TorchFrontend(FrontendSpec()), [torch.randn(2, 160000)])
    assert [layer.momentum for layer in batchnorm_layers(model)] == momenta
    assert model.training


def test_recalibration_without_audio_is_an_error():
    model = create_model("b0_sed_tiny", num_classes=5)
    with pytest.raises(ValueError, match="no audio"):
        recalibrate_batchnorm(model, TorchFrontend(FrontendSpec()), [])


def test_prior_shrinks_towards_trained_statistics():
    torch.manual_seed(0)
    frontend = TorchFrontend(FrontendSpec())
    clean = [torch.randn(4, 160000) * 0.05]
    trained_model = create_model("b0_sed_tiny", num_classes=5)
    layer_index = 3
    trained_mean = batchnorm_layers(trained_model)[layer_index].running_mean.clone()

    pure = create_model("b0_sed_tiny", num_classes=5)
    pure.load_state_dict(trained_model.state_dict())
    recalibrate_batchnorm(pure, frontend, clean, prior_windows=0)
    shrunk = create_model("b0_sed_tiny", num_classes=5)
    shrunk.load_state_dict(trained_model.state_dict())
    recalibrate_batchnorm(shrunk, frontend, clean, prior_windows=12)  # weight 4 / (4 + 12) = 0.25

    expected = 0.25 * batchnorm_layers(pure)[layer_index].running_mean + 0.75 * trained_mean
    torch.testing.assert_close(batchnorm_layers(shrunk)[layer_index].running_mean, expected)


def test_failed_recalibration_keeps_trained_statistics():
    model = create_model("b0_sed_tiny", num_classes=5)
    before = [layer.running_var.clone() for layer in batchnorm_layers(model)]
    with pytest.raises(ValueError):
        recalibrate_batchnorm(model, TorchFrontend(FrontendSpec()), [], prior_windows=32)
    for layer, var in zip(batchnorm_layers(model), before):
        torch.testing.assert_close(layer.running_var, var)
