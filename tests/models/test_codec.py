"""The learned codec and its .vkc files: sizes, exact round trips, and clear errors."""

import math

import pytest
import torch

from vaekit.compression import compress, compress_each, decompress, decompress_many
from vaekit.compression.container import IDENTITY_BYTES
from vaekit.errors import VaekitError
from vaekit.models import build
from vaekit.models.codec import Codec, CodecConfig


def _trained_codec(x: torch.Tensor, seed: int = 0, steps: int = 150, lmbda: float = 0.002, dense: bool = False
                   ) -> Codec:
    torch.manual_seed(seed)
    model = Codec(CodecConfig(input_shape=(1, 8, 8), channels=16, latent_channels=8, stages=1, lmbda=lmbda,
                              dense=dense))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = x[(step * 64) % 256:(step * 64) % 256 + 64]
        loss = model.loss(batch)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def codec(digits_tensor) -> Codec:
    return _trained_codec(digits_tensor[:300])


@pytest.fixture(scope="module")
def held_out(digits_tensor) -> torch.Tensor:
    return digits_tensor[1000:1200]


def test_loss_is_distortion_plus_lambda_rate(codec, held_out):
    """recon + KL = (SSE + lmbda * bits) / (2 sigma^2) + const: the ELBO is the R-D loss."""
    with torch.no_grad():
        loss = codec.loss(held_out)  # eval mode: rounded latents
        sse = (codec.decode(codec.encode(held_out).mode()).mean - held_out).pow(2).flatten(1).sum(1).mean()
        bits = codec.rate_bits(held_out).mean()
    two_var = codec.config.lmbda / math.log(2)
    const = 0.5 * held_out[0].numel() * math.log(2 * math.pi * two_var / 2)
    assert float(loss.elbo) == pytest.approx(float((sse + codec.config.lmbda * bits) / two_var + const), rel=1e-4)
    assert float(loss.kl) == pytest.approx(float(bits) * math.log(2), rel=1e-4)


def test_training_trades_bits_for_distortion(digits_tensor, held_out):
    """A larger lambda makes bits dearer: fewer bits, more squared error."""
    cheap, dear = _trained_codec(digits_tensor[:300], lmbda=0.0005), _trained_codec(digits_tensor[:300], lmbda=0.02)
    assert dear.rate_bits(held_out).mean() < 0.8 * cheap.rate_bits(held_out).mean()
    def mse(m):
        return ((m.reconstruct(held_out) - held_out) ** 2).mean()

    assert mse(dear) > mse(cheap)


def test_coded_size_matches_rate_estimate(codec, held_out):
    data = compress(codec, held_out)
    estimate = float(codec.rate_bits(held_out).sum()) / 8
    header = 3 + 2 + IDENTITY_BYTES + 6 + 4  # magic, version+mode, identity, varints (200 takes 2), CRC
    assert abs(len(data) - header - estimate) <= 0.03 * estimate + 8


def test_round_trip_is_the_quantised_reconstruction_bit_for_bit(codec, held_out):
    assert torch.equal(decompress(codec, compress(codec, held_out)), codec.reconstruct(held_out))
    files = compress_each(codec, held_out)
    assert len(files) == len(held_out)
    assert torch.equal(decompress_many(codec, files), codec.reconstruct(held_out))
    assert torch.equal(decompress(codec, files[7]), codec.reconstruct(held_out[7:8]))


def test_saved_and_reloaded_codec_decodes_the_same(codec, held_out, tmp_path):
    codec.save(tmp_path / "run")
    from vaekit import load

    reloaded = load(tmp_path / "run")
    assert torch.equal(decompress(reloaded, compress(codec, held_out)), codec.reconstruct(held_out))


def test_file_from_another_model_is_refused(codec, digits_tensor, held_out):
    other = _trained_codec(digits_tensor[:300], seed=1, steps=5)
    data = compress(codec, held_out[:3])
    with pytest.raises(VaekitError, match="another model"):
        decompress(other, data)


@pytest.mark.parametrize("keep", [0, 2, 10, 20, -1])
def test_truncated_file_is_refused(codec, held_out, keep):
    data = compress(codec, held_out[:3])
    with pytest.raises(VaekitError, match=r"truncated|not a vaekit"):
        decompress(codec, data[:keep] if keep >= 0 else data[:-1], name="x.vkc")


def test_every_flipped_byte_is_refused(codec, held_out):
    """No single altered byte decodes silently: every position, header and payload."""
    data = compress(codec, held_out[:2])
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(VaekitError):
            decompress(codec, bytes(bad))


def test_wrong_shape_and_range_are_refused(codec):
    with pytest.raises(VaekitError, match="shape"):
        compress(codec, torch.zeros(2, 1, 9, 8))
    with pytest.raises(VaekitError, match=r"\[0, 1\]"):
        compress(codec, torch.full((2, 1, 8, 8), 2.0))


def test_lossy_needs_a_codec():
    vae = build({"model": "vae", "input_shape": [1, 8, 8], "latent_dim": 2}).eval()
    with pytest.raises(VaekitError, match="codec"):
        compress(vae, torch.zeros(1, 1, 8, 8))


def test_config_round_trips_and_derives_latent_dim():
    config = CodecConfig(input_shape=(1, 28, 20), latent_channels=4, stages=2, lmbda=0.01)
    assert config.grid == (7, 5) and config.latent_dim == 4 * 7 * 5
    assert CodecConfig.from_dict(config.to_dict()) == config
    with pytest.raises(VaekitError, match="lmbda"):
        CodecConfig(lmbda=0)


def test_a_dense_codec_codes_one_latent_vector_per_image_exactly(digits_tensor, held_out):
    dense = _trained_codec(digits_tensor[:300], dense=True)
    assert dense.config.grid == (1, 1) and dense.config.latent_dim == 8
    data = compress(dense, held_out)
    assert torch.equal(decompress(dense, data), dense.reconstruct(held_out))
    estimate = float(dense.rate_bits(held_out).sum()) / 8
    assert abs(len(data) - estimate) <= 0.03 * estimate + 40
    assert CodecConfig.from_dict(dense.config.to_dict()) == dense.config


def test_prior_samples_decode_to_images(codec):
    images = codec.sample(5, generator=torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 8, 8) and torch.isfinite(images).all()
