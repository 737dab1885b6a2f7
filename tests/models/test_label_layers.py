"""Where the label enters a CVAE's networks (``label_layers``): the first layer only, every
layer of the decoder (the default, as a scale and shift of each later layer: FiLM), or every
layer of both; shapes for MLP and conv, one-hot and embedding conditions; old runs, saved
without the field, keep the first layer only."""

import copy
import json

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models import CVAE, CVAEConfig, build
from vaekit.nn import LabelFiLM


def _model(arch="mlp", condition="onehot", label_layers="decoder", **fields) -> CVAE:
    torch.manual_seed(0)
    return CVAE(CVAEConfig(input_shape=(1, 8, 8), arch=arch, latent_dim=3, hidden=[16, 12], channels=[4, 8],
                           num_classes=4, condition=condition, label_layers=label_layers, **fields)).eval()


def _weighted(net: torch.nn.Module) -> list[torch.nn.Module]:
    """A network's own layers with weights (not its label modulation)."""
    return [m for name, m in net.named_modules() if not name.startswith("label_film")
            and isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("condition", ["onehot", "embedding"])
@pytest.mark.parametrize("label_layers", ["first", "decoder", "all"])
def test_shapes_losses_and_class_weights_for_every_network_and_condition(arch, condition, label_layers):
    model = _model(arch, condition, label_layers)
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0])
    assert model.reconstruct(x, y).shape == x.shape
    assert model.decode(torch.zeros(2, 5, 3), y).mean.shape == (2, 5, 1, 8, 8)  # several z per example
    assert model.decode(torch.zeros(1, 3), torch.tensor([[0.5, 0.5, 0.0, 0.0]])).mean.shape == (1, 1, 8, 8)
    assert model.log_likelihood(x, y, k=6, chunk=4).shape == (5,)
    model.train()
    loss = model.loss(x, y, iw_samples=3)
    assert torch.isfinite(loss.total)
    loss.total.backward()
    for net, modulated in ((model.decoder, label_layers != "first"), (model.encoder, label_layers == "all")):
        assert (net.label_film is not None) == modulated
        if modulated:  # a scale and a shift for every layer but the one the label is concatenated to
            assert len(net.label_film) == len(_weighted(net)) - 1
            for layer in (*net.label_film.scales, *net.label_film.shifts):
                assert layer.weight.grad.abs().sum() > 0  # each one learns from the first step


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_with_decoder_layers_the_label_reaches_every_layer_of_the_decoder_directly(arch):
    """Changing how label 1 scales or shifts any one decoder layer changes label 1's decode and
    no other label's: the label enters each layer itself, not only through the layers before it."""
    model = _model(arch)
    assert model.config.label_layers == CVAEConfig(num_classes=4).label_layers == "decoder"  # the default
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3])
    before = model.decode(z, labels).mean
    film = model.decoder.label_film
    assert len(film) == len(_weighted(model.decoder)) - 1  # every layer after the first, the output layer too
    for part in ("scales", "shifts"):
        for i in range(len(film)):
            changed = copy.deepcopy(model)
            with torch.no_grad():
                getattr(changed.decoder.label_film, part)[i].weight[:, 1] = 0.5
            after = changed.decode(z, labels).mean
            assert not torch.allclose(after[1], before[1]), (part, i)
            assert torch.allclose(after[[0, 2, 3]], before[[0, 2, 3]])


def test_the_shifts_start_at_zero_so_an_untrained_model_decodes_as_with_the_first_layer_only():
    every = _model("conv", label_layers="all")
    first = _model("conv", label_layers="first")
    first.load_state_dict({k: v for k, v in every.state_dict().items() if "label_film" not in k})
    x, z, y = torch.rand(4, 1, 8, 8), torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    assert torch.allclose(every.decode(z, y).mean, first.decode(z, y).mean)
    assert torch.allclose(every.encode(x, y).mean, first.encode(x, y).mean)


def test_label_film_scales_and_shifts_a_dense_and_a_conv_layer():
    """``h (1 + G_i c) + W_i c``: a dense layer's units, or a conv's channels at every position."""
    film = LabelFiLM(3, [5, 2])
    with torch.no_grad():
        film.shifts[0].weight.copy_(torch.arange(15.0).reshape(5, 3))
        film.scales[0].weight.fill_(1.0)
        film.shifts[1].weight.fill_(1.0)
        film.scales[1].weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]]))
    c = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    dense = film(0, torch.ones(4, 2, 5), c)  # broadcast over the leading axis
    assert torch.equal(dense[0], torch.tensor([[2.0, 5, 8, 11, 14], [4, 7, 10, 13, 16]]))
    conv = film(1, torch.ones(2, 2, 3, 3), c, spatial=True)
    assert torch.equal(conv[:, :, 1, 2], torch.tensor([[3.0, 2.0], [4.0, 1.0]]))
    assert torch.equal(conv, conv[:, :, :1, :1].expand(2, 2, 3, 3))  # the same at every position


def test_old_runs_saved_without_the_field_keep_the_label_in_the_first_layer_only(tmp_path):
    trained = _model(label_layers="first")
    trained.save(tmp_path / "run")
    config_path = tmp_path / "run" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["model"]["label_layers"]  # what a run saved before the field holds
    config_path.write_text(json.dumps(saved))
    loaded = vaekit.from_pretrained(tmp_path / "run")
    assert loaded.config.label_layers == "first"
    assert not any("label_film" in k for k in loaded.state_dict())
    z, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    assert torch.equal(loaded.decode(z, y).mean, trained.decode(z, y).mean)
    shipped = vaekit.pretrained("mnist-cvae")  # saved before the field existed
    assert shipped.config.label_layers == "first" and shipped.decoder.label_film is None
    assert build(CVAEConfig(num_classes=10).to_dict()).config.label_layers == "decoder"  # a new run keeps its own


def test_a_run_with_every_layer_saves_and_loads_its_modulation(tmp_path):
    model = _model("conv", "embedding", "all")
    with torch.no_grad():
        for film in (model.encoder.label_film, model.decoder.label_film):
            for layer in (*film.scales, *film.shifts):
                layer.weight.normal_(std=0.1)
    model.save(tmp_path / "run")
    loaded = vaekit.from_pretrained(tmp_path / "run")
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    assert loaded.config.label_layers == "all"
    assert torch.equal(loaded.reconstruct(x, y), model.reconstruct(x, y))


def test_an_unknown_value_is_a_one_line_error():
    with pytest.raises(VaekitError, match="label_layers: 'every' is not one of first, decoder, all"):
        CVAEConfig(input_shape=(1, 8, 8), num_classes=2, label_layers="every")
