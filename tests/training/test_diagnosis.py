"""Partial collapse and calibrated blur: each flag fires on a case built to have
it, names its remedy as ``vaekit train`` flags, stays quiet on a healthy case, and the
trainer warns of it once."""

import pytest
import torch

from vaekit.models import VAE, VAEConfig
from vaekit.training.config import TrainConfig
from vaekit.training.diagnosis import diagnose, training_findings
from vaekit.training.trainer import Trainer

HEALTHY = {"kl": 20.0, "kl_per_dim": [1.25] * 16, "active_units": 16, "mutual_info": 6.5, "n": 1000}


def _causes(findings):
    return {f.cause for f in findings if f.kind == "partial-collapse"}


def test_a_kl_held_at_the_free_bits_floor_is_partial_collapse():
    # the reported sequence VAE: 64 dimensions at exactly 0.1 nats, every unit "active"
    floor = {"kl": 6.4, "kl_per_dim": [0.1] * 64, "active_units": 64, "n": 200}
    config = {"model": {"model": "seqvae", "decoder_hidden": 512}, "train": {"free_bits": 0.1}}
    (finding,) = [f for f in diagnose(floor, config) if f.cause == "free-bits-floor"]
    assert finding.kind == "partial-collapse" and "64 x 0.1 = 6.4" in finding.seen
    text = str(finding)
    assert "--free-bits 0.2" in text and "--kl-anneal linear:10" in text and "decoder_hidden: 256" in text
    assert "free-bits-floor" not in _causes(diagnose(dict(floor, kl=9.0, kl_per_dim=[0.14] * 64), config))
    assert "free-bits-floor" not in _causes(diagnose(floor, {"train": {"free_bits": 0.0}}))


def test_a_hierarchy_level_with_a_small_share_of_the_kl_is_flagged():
    # the reported three-level VAE: lower levels 0.90 and 0.68 nats under a top of 12.4
    weak = dict(HEALTHY, kl=14.0, kl_per_group=[12.4, 0.90, 0.68], groups=[8, 16, 32])
    (finding,) = [f for f in diagnose(weak, {"train": {}}) if f.cause == "weak-level"]
    assert "level(s) 1, 2" in finding.seen and "--latent-groups 8 " in str(finding)
    assert "--free-bits 0.5" in str(finding)
    even = dict(weak, kl_per_group=[9.0, 3.0, 2.0])
    assert "weak-level" not in _causes(diagnose(even))


def test_little_mutual_information_for_the_kl_is_flagged_unless_the_estimate_is_at_its_ceiling():
    low = dict(HEALTHY, kl=6.4, mutual_info=2.7, n=10_000)
    (finding,) = [f for f in diagnose(low) if f.cause == "low-information"]
    assert "2.7 nats for a KL of 6.4" in finding.seen and "--kl-anneal linear:10" in str(finding)
    # KL 23 nats on 1,000 examples: the estimate cannot pass log 1000 = 6.9, and 6.85 is near it
    assert diagnose(dict(HEALTHY, kl=23.0, mutual_info=6.85, n=1000)) == []
    assert diagnose(HEALTHY) == []


def test_blur_is_measured_against_the_datas_own_one_pixel_blur():
    olivetti = dict(HEALTHY, sharpness_ratio=0.61, sharpness_reference=0.73, recon_mse=0.01)
    (finding,) = diagnose(olivetti)
    assert finding.kind == "blur" and "(0.73)" in finding.seen and "--latent-dim 32" in str(finding)
    # 8x8 digits lose more to a one-pixel blur, so the same ratio there is no blur
    assert diagnose(dict(olivetti, sharpness_reference=0.53)) == []
    assert diagnose(dict(olivetti, sharpness_ratio=0.82)) == []


def test_the_training_findings_read_an_epochs_row():
    row = {"val_kl": 3.0, "val_kl_per_dim": [1.0, 1.0, 1.0], "train_kl_group0": 2.9, "train_kl_group1": 0.1}
    config = {"model": {"model": "hvae", "groups": [1, 2]}, "train": {}}
    (finding,) = training_findings(row, config)
    assert finding.cause == "weak-level" and "--latent-groups 1 " in str(finding)
    assert training_findings(dict(row, train_kl_group1=1.0), config) == []
    collapsed = {"val_kl": 0.01, "val_kl_per_dim": [0.005, 0.005]}
    assert [f.kind for f in training_findings(collapsed, {"model": {}, "train": {}})] == ["posterior-collapse"]


def test_the_trainer_warns_once_when_the_kl_sits_at_the_free_bits_floor(tiny_digits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[32]))
    config = TrainConfig(epochs=3, batch_size=100, beta=20.0, free_bits=2.0)
    with pytest.warns(UserWarning, match=r"partial-collapse: KL .* free-bits floor 4 x 2 = 8.*--free-bits 4") as caught:
        Trainer(model, config, progress=False).fit(tiny_digits)
    assert sum("free-bits floor" in str(w.message) for w in caught) == 1
