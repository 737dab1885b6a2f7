"""Recurrent layers over padded batches (``vaekit.nn.bidirectional_final_state``, ``recurrent``):
the same states and gradients as torch's packed path, and the autocast precision where asked."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vaekit.errors import VaekitError
from vaekit.nn import bidirectional_final_state, recurrent


def _batch(rows=9, steps=7, features=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (rows,), generator=g)
    lengths[0] = steps  # the longest row sets the padded length, as in a real batch
    x = torch.randn(rows, steps, features, generator=g)
    return x, lengths


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM])
def test_the_padded_final_states_are_the_packed_ones_with_the_same_gradients(kind):
    torch.manual_seed(0)
    rnn = kind(5, 6, batch_first=True, bidirectional=True)
    x, lengths = _batch()
    x_packed, x_padded = x.clone().requires_grad_(), x.clone().requires_grad_()
    packed_state = rnn(pack_padded_sequence(x_packed, lengths, batch_first=True, enforce_sorted=False))[1]
    packed_state = packed_state[0] if kind is nn.LSTM else packed_state  # an LSTM's (h, c): h
    weights = torch.randn(2, len(x), 6)
    (packed_state * weights).sum().backward()
    packed_grads = [p.grad.clone() for p in rnn.parameters()]
    rnn.zero_grad()
    padded_state = bidirectional_final_state(rnn, x_padded, lengths)
    (padded_state * weights).sum().backward()
    torch.testing.assert_close(padded_state, packed_state, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x_padded.grad, x_packed.grad, rtol=1e-5, atol=1e-6)
    for padded_grad, packed_grad in zip((p.grad for p in rnn.parameters()), packed_grads, strict=True):
        torch.testing.assert_close(padded_grad, packed_grad, rtol=1e-4, atol=1e-5)


def test_what_follows_a_sequence_never_reaches_its_final_states():
    torch.manual_seed(0)
    rnn = nn.GRU(5, 6, batch_first=True, bidirectional=True)
    x, lengths = _batch()
    noisy = x.clone()
    for row, n in enumerate(lengths.tolist()):
        noisy[row, n:] = 100.0
    clean = bidirectional_final_state(rnn, x, lengths)
    torch.testing.assert_close(bidirectional_final_state(rnn, noisy, lengths), clean)


def test_only_a_one_layer_bidirectional_gru_is_taken():
    x, lengths = _batch()
    for rnn in (nn.GRU(5, 6, batch_first=True), nn.GRU(5, 6, num_layers=2, batch_first=True, bidirectional=True)):
        with pytest.raises(VaekitError, match="bidirectional"):
            bidirectional_final_state(rnn, x, lengths)


def test_under_autocast_the_layers_run_in_its_dtype_and_train_their_float32_weights():
    torch.manual_seed(0)
    decoder = nn.GRU(5, 8, batch_first=True)
    encoder = nn.GRU(5, 6, batch_first=True, bidirectional=True)
    x, lengths = _batch()
    plain_out, _ = recurrent(decoder, x)
    plain_state = bidirectional_final_state(encoder, x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = recurrent(decoder, x)
        state = bidirectional_final_state(encoder, x, lengths)
    assert out.dtype == state.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), plain_out, rtol=0.05, atol=0.05)
    torch.testing.assert_close(state.float(), plain_state, rtol=0.05, atol=0.05)
    (out.float().sum() + state.float().sum()).backward()
    for p in (*decoder.parameters(), *encoder.parameters()):
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32


def test_without_autocast_recurrent_is_the_layer_itself():
    torch.manual_seed(0)
    rnn = nn.GRU(5, 8, num_layers=2, batch_first=True)
    x, _ = _batch()
    state = torch.randn(2, len(x), 8)
    out, last = recurrent(rnn, x, state)
    expected_out, expected_last = rnn(x, state)
    assert torch.equal(out, expected_out) and torch.equal(last, expected_last)
