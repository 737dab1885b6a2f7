"""Encoder and decoder building blocks, sized from the data's shape.

Encoders map ``(B, *input_shape)`` to a flat feature vector; decoders map a latent
``(B, latent_dim)`` to ``(B, *input_shape)`` output parameters, or ``(B, *input_shape, k)``
with ``out_channels=k`` parameters per element (a mean and a std, categories). The conv pair
records the spatial size at every stage so the decoder reproduces any input size
exactly (8x8 digits, 28x20 Frey faces, 64x64 photos) without padding tricks.

Every encoder and decoder takes an optional condition vector ``c`` (``cond_features``
wide, from ``LabelEncoder``): it is concatenated to the input of the first dense layer
(the flattened input of an MLP encoder, the flattened conv features of a conv encoder,
the latent of either decoder), so any model family can become conditional with the same
blocks. With ``cond_every_layer`` it also reaches every later layer, dense or conv, as a
learned scale and shift of that layer's output (``LabelFiLM``).

Recurrent layers (a sequence model's encoder and decoder) run through ``recurrent`` and
``bidirectional_final_state``: over padded batches, and in the autocast precision when
training asks for one.
"""

from __future__ import annotations

import functools
import math
from itertools import pairwise

import torch
from torch import nn

from vaekit.errors import VaekitError

#: The network kinds a family can be built with: dense layers, or stride-2 convolutions first.
ARCHS = ("mlp", "conv")

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def mlp(sizes: list[int], act: str, final_activation: bool) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, an activation after each but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation(act))
    return nn.Sequential(*layers)


class ResidualCell(nn.Module):
    """``h + f(h)`` with ``f`` = ``blocks`` times (activation, Linear, activation, Linear).

    The residual cells of a hierarchical VAE's bottom-up and top-down paths (NVAE's cells,
    for vectors). Each block's last layer starts at zero, so a deep stack of cells begins
    as the identity and gradients reach every latent group from the first step.
    """

    def __init__(self, width: int, act: str, blocks: int = 1) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            last = nn.Linear(width, width)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.blocks.append(nn.Sequential(activation(act), nn.Linear(width, width), activation(act), last))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = h + block(h)
        return h


def _with_condition(h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """``h`` with the condition ``c`` appended on the last axis (``c`` broadcast over ``h``'s leading axes)."""
    if c is None:
        return h
    return torch.cat([h, c.to(h.dtype).expand(*h.shape[:-1], c.shape[-1])], dim=-1)


class LabelFiLM(nn.Module):
    """The condition ``c`` as a learned scale and shift of layers' outputs (FiLM, Perez et al.
    2018): the i-th layer modulated computes ``h (1 + G_i c) + W_i c`` from its pre-activation
    ``h``, one ``G_i``, ``W_i`` per entry of ``widths`` (a dense layer's outputs, or a conv's
    channels, modulated alike at every position).

    The shift ``W_i c`` is what concatenating ``c`` to that layer's input would add; the scale
    lets each class turn each unit up or down, so every class gets its own function of z.
    Both start at zero: an untrained network computes what it would without them.
    """

    def __init__(self, cond_features: int, widths: list[int]) -> None:
        super().__init__()
        self.scales = nn.ModuleList(nn.Linear(cond_features, w, bias=False) for w in widths)
        self.shifts = nn.ModuleList(nn.Linear(cond_features, w, bias=False) for w in widths)
        for layer in (*self.scales, *self.shifts):
            nn.init.zeros_(layer.weight)

    def __len__(self) -> int:
        return len(self.shifts)

    def forward(self, i: int, h: torch.Tensor, c: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        """Layer i's ``h`` modulated: ``h`` is a dense layer's ``(..., width)`` (``c`` broadcast
        over its leading axes) or, ``spatial``, a conv's ``(N, channels, H, W)`` with ``c`` ``(N, cond_features)``."""
        c = c.to(h.dtype)
        scale, shift = self.scales[i](c), self.shifts[i](c)
        if spatial:
            scale, shift = scale[:, :, None, None], shift[:, :, None, None]
        return h * (1 + scale) + shift


#: The layers ``LabelFiLM`` modulates (those with weights), and those of them whose output is a feature map.
_WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
_CONV = (nn.Conv2d, nn.ConvTranspose2d)


def _modulated(net: nn.Module, h: torch.Tensor, c: torch.Tensor | None, film: LabelFiLM | None,
               start: int = 0, concatenated: bool = True) -> torch.Tensor:
    """``net(h)`` (a ``Sequential``) with its weighted layers' outputs modulated by ``film``'s
    entries ``start``, ``start + 1``, ... in order; with ``concatenated`` the first weighted
    layer (``c`` is in its input) is not."""
    if film is None or c is None or not isinstance(net, nn.Sequential):
        return net(h)
    i = start - int(concatenated)
    for layer in net:
        h = layer(h)
        if isinstance(layer, _WEIGHTED):
            if i >= start:
                h = film(i, h, c, spatial=isinstance(layer, _CONV))
            i += 1
    return h


def _label_film(cond_features: int, every_layer: bool, widths: list[int]) -> LabelFiLM | None:
    """The modulation of a network's layers after the first, or ``None`` (no condition, or first layer only)."""
    return LabelFiLM(cond_features, widths) if every_layer and cond_features and widths else None


def _weighted_widths(net: nn.Module) -> list[int]:
    """The output widths (features or channels) of ``net``'s weighted layers, in order."""
    return [m.out_features if isinstance(m, nn.Linear) else m.out_channels
            for m in net.modules() if isinstance(m, _WEIGHTED)]


class LabelEncoder(nn.Module):
    """Class labels -> the condition vector every block above accepts.

    ``mode="onehot"``: the one-hot vector (``num_classes`` wide, no parameters);
    ``mode="embedding"``: a learned ``embedding_dim``-wide vector per class (fewer inputs
    when there are many classes). Besides int64 labels ``(B,)`` it takes float class
    weights ``(B, num_classes)``: a mixture of classes (the weighted one-hot, or the weighted
    embeddings), which is what a smooth path between two labels decodes.
    """

    def __init__(self, num_classes: int, mode: str = "onehot", embedding_dim: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.mode = mode
        self.embedding = nn.Embedding(num_classes, embedding_dim) if mode == "embedding" else None
        self.out_features = embedding_dim if mode == "embedding" else num_classes

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.is_floating_point():  # class weights (B, num_classes)
            return cond if self.embedding is None else cond.to(self.embedding.weight.dtype) @ self.embedding.weight
        if self.embedding is not None:
            return self.embedding(cond)
        return nn.functional.one_hot(cond, self.num_classes).float()


class MLPEncoder(nn.Module):
    """Flatten, then hidden layers; ``out_features`` is the last hidden size. ``c`` joins the
    first layer's input and, with ``cond_every_layer``, modulates every later layer (``LabelFiLM``)."""

    def __init__(self, input_shape: tuple[int, ...], hidden: list[int], act: str, cond_features: int = 0,
                 cond_every_layer: bool = False) -> None:
        super().__init__()
        sizes = [math.prod(input_shape) + cond_features, *hidden]
        self.net = mlp(sizes, act, final_activation=True)
        self.out_features = sizes[-1]
        self.label_film = _label_film(cond_features, cond_every_layer, _weighted_widths(self.net)[1:])

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return _modulated(self.net, _with_condition(x.flatten(1), c), c, self.label_film)


class MLPDecoder(nn.Module):
    """Latent -> hidden layers -> ``out_channels`` parameters per input element. ``c`` joins
    the first layer's input and, with ``cond_every_layer``, modulates every later layer, the
    output layer included (``LabelFiLM``)."""

    def __init__(self, latent_dim: int, hidden: list[int], output_shape: tuple[int, ...], act: str,
                 out_channels: int = 1, cond_features: int = 0, cond_every_layer: bool = False) -> None:
        super().__init__()
        self.output_shape = output_shape
        self.out_channels = out_channels
        out = math.prod(output_shape) * out_channels
        self.net = mlp([latent_dim + cond_features, *hidden, out], act, final_activation=False)
        self.label_film = _label_film(cond_features, cond_every_layer, _weighted_widths(self.net)[1:])

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        y = _modulated(self.net, _with_condition(z, c), c, self.label_film)
        if self.out_channels == 1:
            return y.reshape(*lead, *self.output_shape)
        return y.reshape(*lead, *self.output_shape, self.out_channels)


def check_arch(arch: str, input_shape: tuple[int, ...] | list[int]) -> None:
    """Refuse an unknown ``arch``, and ``conv`` for data that are not images (C, H, W)."""
    if arch not in ARCHS:
        raise VaekitError(f"arch: '{arch}' is not one of {', '.join(ARCHS)}")
    if arch == "conv" and len(input_shape) != 3:
        raise VaekitError(f"arch conv needs image data (C, H, W); this data has shape {tuple(input_shape)}"
                          " (use --arch mlp)")


def _conv_out(size: int) -> int:
    # kernel 4, stride 2, padding 1 halves a size (rounding down).
    return (size + 2 - 4) // 2 + 1


class ConvEncoder(nn.Module):
    """Stride-2 convolutions (each halves H and W), then dense layers.

    ``stage_sizes`` lists the spatial size before each conv, for the decoder. ``c`` joins the
    first dense layer's input and, with ``cond_every_layer``, modulates every conv and every
    later dense layer (``LabelFiLM``).
    """

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], hidden: list[int], act: str,
                 cond_features: int = 0, cond_every_layer: bool = False) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"conv encoder needs (C, H, W) inputs, got shape {input_shape}")
        c, h, w = input_shape
        layers: list[nn.Module] = []
        self.stage_sizes: list[tuple[int, int]] = []
        for out_c in channels:
            if min(h, w) < 2:
                break
            self.stage_sizes.append((h, w))
            layers += [nn.Conv2d(c, out_c, 4, 2, 1), activation(act)]
            c, h, w = out_c, _conv_out(h), _conv_out(w)
        self.convs = nn.Sequential(*layers)
        self.feature_shape = (c, h, w)
        flat = c * h * w + cond_features
        self.dense = mlp([flat, *hidden], act, final_activation=True) if hidden else nn.Identity()
        self.out_features = hidden[-1] if hidden else flat
        self._convs_modulated = len(_weighted_widths(self.convs))
        self.label_film = _label_film(cond_features, cond_every_layer,
                                        _weighted_widths(self.convs) + _weighted_widths(self.dense)[1:])

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = _modulated(self.convs, x, c, self.label_film, concatenated=False).flatten(1)
        return _modulated(self.dense, _with_condition(h, c), c, self.label_film, start=self._convs_modulated)


class ConvDecoder(nn.Module):
    """Mirror of ``ConvEncoder``: dense layers, then transposed convs to the exact size.

    ``out_channels`` parameters per output element come last, as in ``MLPDecoder``. ``c``
    joins the first dense layer's input and, with ``cond_every_layer``, modulates every later
    dense layer and every transposed conv (``LabelFiLM``).
    """

    def __init__(self, latent_dim: int, encoder: ConvEncoder, output_channels: int, hidden: list[int],
                 act: str, cond_features: int = 0, out_channels: int = 1, cond_every_layer: bool = False) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.feature_shape = encoder.feature_shape
        self.stage_sizes = list(reversed(encoder.stage_sizes))
        flat = math.prod(self.feature_shape)
        self.dense = mlp([latent_dim + cond_features, *reversed(hidden), flat], act, final_activation=True)
        conv_channels = [m.out_channels for m in encoder.convs if isinstance(m, nn.Conv2d)]
        ins = list(reversed(conv_channels))
        outs = [*ins[1:], output_channels * out_channels]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs, strict=True))
        self.act = activation(act)
        self._dense_modulated = len(_weighted_widths(self.dense)) - 1
        self.label_film = _label_film(cond_features, cond_every_layer,
                                        _weighted_widths(self.dense)[1:] + _weighted_widths(self.deconvs))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        zc = _with_condition(z, c)
        rows = None  # c of each row of zc, needed only where the label modulates the layers
        if c is not None and self.label_film is not None:
            rows = c.expand(*lead, c.shape[-1]).reshape(-1, c.shape[-1])
        y = _modulated(self.dense, zc.reshape(-1, zc.shape[-1]), rows, self.label_film)
        y = y.reshape(-1, *self.feature_shape)
        for i, (deconv, size) in enumerate(zip(self.deconvs, self.stage_sizes, strict=True)):
            y = deconv(y, output_size=list(size))
            if rows is not None:
                y = self.label_film(self._dense_modulated + i, y, rows, spatial=True)
            if i < len(self.deconvs) - 1:
                y = self.act(y)
        if self.out_channels > 1:  # (N, C * k, H, W) -> (N, C, H, W, k)
            y = y.unflatten(1, (-1, self.out_channels)).movedim(2, -1)
        return y.reshape(*lead, *y.shape[1:])


def recurrent(rnn: nn.RNNBase, inputs: torch.Tensor, state: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``rnn(inputs, state)`` over a padded batch, in the autocast precision where autocast is on.

    torch's autocast leaves recurrent layers in float32, yet a sequence model spends most of
    its step in them, and on a processor with native bfloat16 matrix products they run
    several times faster in it. So under autocast (``TrainConfig.precision``) the layer runs
    with its weights, inputs and state cast to the autocast dtype (the float32 weights stay
    the ones the optimizer updates: the casts are differentiable) and returns that dtype; the
    densities downstream are computed in float32 as everywhere (``full_precision``). Without
    autocast this is exactly ``rnn(inputs, state)``.
    """
    if not torch.is_autocast_enabled(inputs.device.type):
        return rnn(inputs, state)
    return _run(rnn, dict(rnn.named_parameters()), inputs, state)


def bidirectional_final_state(rnn: nn.RNNBase, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each direction's last hidden state (an LSTM's h) of a one-layer bidirectional ``rnn`` over padded
    sequences ``inputs`` (B, T, F) of ``lengths`` (B,): ``(2, B, H)``, the state ``rnn`` returns
    for the same sequences packed (``pack_padded_sequence``), to float precision.

    Why not packed: torch's CPU kernels run a packed batch step by step, and the backward
    pass then zero-fills and accumulates a gradient buffer the size of the whole batch's
    input gates at every step, which costs more than the recurrence itself. Here each
    direction is one plain pass over the padded batch (the backward direction over each
    sequence reversed within its length), and the state is read at each sequence's last
    token; the padding after it never reaches that state. Runs in the autocast precision as
    ``recurrent`` does.
    """
    if not rnn.bidirectional or rnn.num_layers != 1:
        raise VaekitError("bidirectional_final_state: needs a one-layer bidirectional recurrent layer")
    weights = dict(rnn.named_parameters())
    forward = {name: w for name, w in weights.items() if not name.endswith("_reverse")}
    backward = {name: weights[f"{name}_reverse"] for name in forward}
    one_way = _one_direction(type(rnn), rnn.input_size, rnn.hidden_size, rnn.bias)
    lengths = lengths.to(inputs.device)
    rows = torch.arange(len(lengths), device=inputs.device)
    last = (lengths - 1).clamp(min=0)
    steps = torch.arange(inputs.shape[1], device=inputs.device)
    reversed_order = torch.where(steps < lengths[:, None], last[:, None] - steps, steps)
    reversed_inputs = inputs.gather(1, reversed_order[..., None].expand(-1, -1, inputs.shape[2]))
    out_forward, _ = _run(one_way, forward, inputs)
    out_backward, _ = _run(one_way, backward, reversed_inputs)
    return torch.stack([out_forward[rows, last], out_backward[rows, last]])


@functools.cache
def _one_direction(kind: type[nn.RNNBase], input_size: int, hidden_size: int, bias: bool) -> nn.RNNBase:
    """A weightless one-way layer of this shape, run with one direction's weights of a
    bidirectional one (``torch.func.functional_call``): no copy of them, and no parameters of
    its own in the model that uses it."""
    return kind(input_size, hidden_size, bias=bias, batch_first=True, device="meta")


def _run(rnn: nn.RNNBase, weights: dict[str, torch.Tensor], inputs: torch.Tensor, state: torch.Tensor | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``rnn`` with ``weights``, under autocast in its dtype (``recurrent``)."""
    device = inputs.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        weights = {name: w.to(dtype) for name, w in weights.items()}
        inputs = inputs.to(dtype)
        state = None if state is None else state.to(dtype)
        with torch.autocast(device, enabled=False):
            return torch.func.functional_call(rnn, weights, (inputs, state))
    return torch.func.functional_call(rnn, weights, (inputs, state))
