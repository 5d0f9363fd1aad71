"""Every experiment config composes, states its intent, and builds its model and data settings."""

import pytest
import torch

from train.config import config_dir, frontend_spec, load_config, require_run_intent
from train.module import SEDLitModule

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def test_reference_history_is_configured():
    expected = {"phase0_baseline", "phase1_b0", "phase2_b0_teacher", "phase3_v2s", "phase4_v2s_teacher", "phase6_b0_noteacher"}
    assert expected <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_builds(experiment):
    cfg = load_config([f"experiment={experiment}"])
    intent = require_run_intent(cfg)
    assert all(intent.values())
    assert cfg.experiment_name == experiment
    spec = frontend_spec(cfg)
    stage = dict(cfg.supervised)
    module = SEDLitModule(dict(cfg.model), 234, spec.to_dict(), stage, teacher_dim=1024 if cfg.teacher.name else 0)
    logmel = module.frontend(torch.randn(2, spec.window_samples) * 0.1)
    out = module.model.eval()(logmel)
    assert out.logits.shape == (2, 234)
    assert (module.projection is not None) == bool(cfg.teacher.name)


def test_phase0_baseline_settings():
    cfg = load_config(["experiment=phase0_baseline"])
    assert cfg.data.frontend.n_mels == 64
    assert cfg.data.frontend.normalization == "minmax"
    assert cfg.model.name == "b0_gap"
    assert cfg.supervised.max_epochs == 6
    assert cfg.data.max_focal_clips == 3000
    assert cfg.ns.rounds == 0


def test_distilled_export_names_teacher_licence():
    from train.export import export_licence

    distilled = export_licence(load_config(["experiment=demo_b0"]))
    plain = export_licence(load_config(["experiment=demo_b0_noteacher"]))
    assert "CC BY-NC-SA 4.0" in distilled
    assert "birdnet_v24" in distilled
    assert "distilled" not in plain
