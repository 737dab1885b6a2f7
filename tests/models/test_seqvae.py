"""The sequence VAE: masked likelihood, encoder, decoding, training through the common trainer, the CLI.

Every model here is tiny and trains for one or two epochs on ~120 MOSES test molecules
(written into a temporary .smi file), so the whole file runs in seconds.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("selfies")

import vaekit
from vaekit import latent
from vaekit.chem.generation import MoleculeModel
from vaekit.cli import main
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.molecules.grammar import FirstAtom
from vaekit.data.molecules.rdkit import canonical, to_mol
from vaekit.data.molecules.tokens import DEFAULT_TOKENS, SmilesTokenizer, Vocabulary
from vaekit.errors import VaekitError
from vaekit.models import SeqVAE, SeqVAEConfig
from vaekit.models.autoregressive import beam_search, decode
from vaekit.serialization import load_checkpoint
from vaekit.training.devices import native_bfloat16
from vaekit.training.runs import load as load_run

from interrupts import train_interrupted
from moses_head import MOSES_TEST_HEAD

MOLECULES = MOSES_TEST_HEAD  # the first 120 molecules of the MOSES test set
SMALL = {"model": "seqvae", "latent_dim": 8, "embedding_dim": 16, "encoder_hidden": 32, "decoder_hidden": 64}
TOY_VOCABULARY = ["<pad>", "<bos>", "<eos>", "C", "N", "O"]


def _write_smiles(path, molecules=MOLECULES):
    path.write_text("\n".join(molecules) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny SELFIES run (every decode a molecule, however little it trained) with the seqvae's
    default schedule (KL annealing, free bits)."""
    root = tmp_path_factory.mktemp("seqvae")
    smi = _write_smiles(root / "mols.smi")
    return vaekit.train({"source": str(smi), "tokens": "selfies"}, SMALL, {"epochs": 4, "batch_size": 32},
                        root / "run", progress=False)


def _toy_model(seed=0, **options):
    torch.manual_seed(seed)
    config = SeqVAEConfig(**{"input_shape": (8,), "latent_dim": 4, "vocabulary": TOY_VOCABULARY, "embedding_dim": 8,
                             "encoder_hidden": 8, "decoder_hidden": 16, **options})
    return SeqVAE(config).eval()


# -- likelihood and encoder ------------------------------------------------------------------
def test_padding_is_masked_out_of_the_log_likelihood():
    model = _toy_model()
    x = torch.tensor([[1, 3, 4, 5, 2, 0, 0, 0], [1, 3, 2, 0, 0, 0, 0, 0]], dtype=torch.float32)
    z = torch.randn(2, 4)
    log_p = model.decode(z).log_prob(x)
    noisy = x.clone()
    noisy[0, 5:], noisy[1, 3:] = torch.tensor([3.0, 4, 5]), torch.tensor([5.0, 5, 4, 3, 3])
    assert torch.allclose(model.decode(z).log_prob(noisy), log_p, atol=1e-6)
    changed = x.clone()
    changed[0, 2] = 5  # a real token: the likelihood must move
    assert not torch.allclose(model.decode(z).log_prob(changed), log_p, atol=1e-3)
    # By hand: the short row is scored on its own two targets (C after bos, eos after C), bos never.
    logp = torch.log_softmax(model.teacher_forced_logits(z[1:], torch.tensor([[1, 3, 2]])), dim=-1)[0]
    assert torch.allclose(log_p[1], logp[0, 3] + logp[1, 2], atol=1e-5)


def test_bits_per_dim_counts_the_predicted_tokens_not_the_padding():
    model = _toy_model()
    x = torch.tensor([[1, 3, 4, 5, 2, 0, 0, 0], [1, 3, 2, 0, 0, 0, 0, 0]], dtype=torch.float32)
    assert model.values_per_example(x).tolist() == [4.0, 2.0]  # C C C eos | C eos
    figures = vaekit.evaluate(model, x, k=4)
    assert figures["bits_per_dim"] == pytest.approx(figures["nll"] * 2 / (6 * math.log(2)))


def test_word_dropout_hides_the_previous_tokens_in_training_only():
    model = _toy_model(word_dropout=0.999999)
    z = torch.randn(1, 4)
    a, b = torch.tensor([[1, 3, 4, 5, 2]]), torch.tensor([[1, 5, 5, 3, 2]])
    model.train()
    torch.manual_seed(0)
    assert torch.allclose(model.teacher_forced_logits(z, a), model.teacher_forced_logits(z, b))
    model.eval()
    assert not torch.allclose(model.teacher_forced_logits(z, a), model.teacher_forced_logits(z, b))
    with pytest.raises(VaekitError, match=r"word_dropout: must be in \[0, 1\), got 1.5"):
        _toy_model(word_dropout=1.5)


def test_the_encoder_ignores_what_follows_eos():
    model = _toy_model()
    x = torch.tensor([[1, 3, 4, 2, 0, 0, 0, 0], [1, 5, 2, 0, 0, 0, 0, 0]], dtype=torch.float32)
    noisy = x.clone()
    noisy[:, 4:] = 4
    assert torch.allclose(model.encode(x).mean, model.encode(noisy).mean, atol=1e-6)


def test_in_bfloat16_the_loss_is_the_float32_loss_to_its_precision_and_trains_float32_weights():
    model = _toy_model()
    x = torch.tensor([[1, 3, 4, 2, 0, 0, 0, 0], [1, 5, 2, 0, 0, 0, 0, 0], [1, 4, 4, 5, 3, 2, 0, 0]],
                     dtype=torch.float32)
    torch.manual_seed(0)
    plain = model.loss(x)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model.loss(x)
    assert low.total.dtype == torch.float32  # the densities are computed in float32
    assert abs(low.total.item() - plain.total.item()) < 0.02 * abs(plain.total.item())
    low.total.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32
               for p in (*model.encoder.parameters(), *model.decoder.parameters()))


def test_importance_samples_broadcast_over_the_rows():
    model = _toy_model()
    x = torch.tensor([[1, 3, 4, 2, 0, 0, 0, 0], [1, 5, 2, 0, 0, 0, 0, 0]], dtype=torch.float32)
    z = torch.randn(3, 2, 4)
    many = model.decode(z).log_prob(x)
    assert many.shape == (3, 2)
    assert torch.allclose(many[1], model.decode(z[1]).log_prob(x), atol=1e-5)
    assert model.log_likelihood(x, k=6, chunk=3).shape == (2,)


def test_config_round_trips_through_json_and_a_saved_model_gives_identical_outputs(tmp_path):
    model = _toy_model()
    config = SeqVAEConfig.from_dict(json.loads(json.dumps(model.config.to_dict())))
    assert config == model.config
    model.save(tmp_path / "m")
    again = vaekit.load(tmp_path / "m")
    x = torch.tensor([[1, 3, 4, 2, 0, 0, 0, 0]], dtype=torch.float32)
    z = torch.randn(5, 4)
    assert torch.equal(again.decode(z[:1]).log_prob(x), model.decode(z[:1]).log_prob(x))
    assert torch.equal(again.generate(z, method="beam", beam_width=3), model.generate(z, method="beam", beam_width=3))


def test_a_seqvae_config_without_a_vocabulary_is_refused():
    with pytest.raises(VaekitError, match="vocabulary: a seqvae takes its tokens from sequence data"):
        SeqVAEConfig()


# -- decoding --------------------------------------------------------------------------------
TOY_TABLE = {(): {3: 0.6, 4: 0.4}, (3,): {2: 0.34, 3: 0.33, 4: 0.33}, (4,): {2: 0.9, 3: 0.05, 4: 0.05}}  # A=3, B=4


class ToyDecoder:
    """Next-token probabilities from a table keyed by the prefix: greedy takes A (0.6) and then ends
    (0.34), 0.204 in all; the best sequence is B then end, 0.4 * 0.9 = 0.36."""

    pad_id, bos_id, eos_id, max_length = 0, 1, 2, 4

    def probs(self, prefix):
        return TOY_TABLE.get(prefix, {2: 0.5, 3: 0.25, 4: 0.25})

    def start(self, z):
        return [() for _ in range(len(z))]

    def step(self, tokens, state):
        state = [p if t == self.bos_id else (*p, t) for p, t in zip(state, tokens.tolist(), strict=True)]
        logits = torch.full((len(state), 5), -torch.inf)
        for i, prefix in enumerate(state):
            for token, p in self.probs(prefix).items():
                logits[i, token] = np.log(p)
        return logits, state

    def select(self, state, index):
        return [state[i] for i in index.tolist()]


def test_beam_search_returns_the_highest_scoring_sequence_where_greedy_does_not():
    toy = ToyDecoder()
    best, best_p = None, 0.0  # brute force over every sequence that fits (at most 2 tokens, then eos)
    for first in (3, 4):
        for second in (None, 3, 4):
            prefix = (first,) if second is None else (first, second)
            p = toy.probs(())[first] * (toy.probs((first,))[second] if second else 1.0) * toy.probs(prefix)[2]
            if p > best_p:
                best, best_p = [1, *prefix, 2], p
    z = torch.zeros(3, 1)
    assert best == [1, 4, 2]
    assert beam_search(toy, z, width=2).tolist() == [[1, 4, 2, 0]] * 3
    assert decode(toy, z, method="greedy").tolist() == [[1, 3, 2, 0]] * 3
    assert beam_search(toy, z, width=1).tolist() == [[1, 3, 2, 0]] * 3  # width 1 is greedy


def test_sampling_ends_every_sequence_and_honours_the_allowed_first_tokens():
    toy = ToyDecoder()
    z = torch.zeros(200, 1)
    ids = decode(toy, z, method="sample", generator=torch.Generator().manual_seed(0))
    assert ids.shape == (200, 4) and bool((ids[:, 0] == 1).all())
    assert bool(((ids == 2).sum(dim=1) == 1).all())  # exactly one eos, the last slot forced if need be
    firsts = ids[:, 1]
    assert 0.5 < float((firsts == 3).float().mean()) < 0.7  # ~0.6
    only_b = decode(toy, z, method="sample", grammar=FirstAtom([4], 5), generator=torch.Generator())
    assert bool((only_b[:, 1] == 4).all())
    cold = decode(toy, z[:5], method="sample", temperature=1e-4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(cold, decode(toy, z[:5], method="greedy"))


def _reference_decode(model, z, *, method, temperature=1.0, generator=None, first_tokens=None):
    """Decoding as written before sequences dropped out of the batch: nn.GRU one step at a
    time on every row until all have ended, torch.multinomial over every row."""
    c, b = model.config, len(z)
    out = torch.full((b, model.max_length), model.pad_id, dtype=torch.long)
    out[:, 0] = model.bos_id
    done = torch.zeros(b, dtype=torch.bool)
    h = torch.tanh(model.to_state(z)).reshape(b, c.decoder_layers, c.decoder_hidden).transpose(0, 1).contiguous()
    for t in range(1, model.max_length):
        step, h = model.decoder(torch.cat([model.embedding(out[:, t - 1]), z], dim=-1).unsqueeze(1), h)
        logits = model.to_logits(step[:, 0]).clone()
        logits[:, [model.pad_id, model.bos_id]] = -torch.inf
        if t == 1:
            logits[:, model.eos_id] = -torch.inf
            if first_tokens is not None:
                keep = torch.zeros(logits.shape[1], dtype=torch.bool)
                keep[first_tokens] = True
                logits[:, ~keep] = -torch.inf
        logp = torch.log_softmax(logits, dim=-1)
        if t == model.max_length - 1:
            end = logp[:, model.eos_id].nan_to_num(neginf=0.0)
            logp = torch.full_like(logp, -torch.inf)
            logp[:, model.eos_id] = end
        if method == "greedy":
            token = logp.argmax(-1)
        else:
            token = torch.multinomial(torch.softmax(logp / temperature, -1), 1, generator=generator).squeeze(1)
        out[:, t] = torch.where(done, model.pad_id, token)
        done |= token == model.eos_id
        if bool(done.all()):
            break
    return out


@pytest.mark.parametrize("layers", [1, 2])
def test_decoding_gives_the_tokens_of_the_plain_loop_for_the_same_seed(layers):
    """Ended sequences leave the batch and the GRU step is written out, but a seed still gives
    the molecules it gave before: same tokens, and the generator left in the same state."""
    model = _toy_model(seed=3, decoder_layers=layers)
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for method, temperature, first in (("sample", 1.0, None), ("sample", 0.6, torch.tensor([3, 5])),
                                           ("greedy", 1.0, None)):
            ours, theirs = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
            grammar = None if first is None else FirstAtom(first.tolist(), model.to_logits.out_features)
            new = model.generate(z, method=method, temperature=temperature, generator=ours, grammar=grammar)
            old = _reference_decode(model, z, method=method, temperature=temperature, generator=theirs,
                                    first_tokens=first)
            assert torch.equal(new, old), method
            assert torch.equal(ours.get_state(), theirs.get_state())
            if method == "sample":
                lengths = (new != model.pad_id).sum(1)
                assert int(lengths.min()) < int(lengths.max())  # some sequences ended before others
                sampled = new
        # the step-by-step decoder agrees with the teacher-forced one on the same tokens
        state, steps = model.start(z), []
        for t in range(1, sampled.shape[1]):
            logits, state = model.step(sampled[:, t - 1], state)
            steps.append(logits)
        assert torch.allclose(torch.stack(steps, 1), model.teacher_forced_logits(z, sampled), atol=1e-5)


# -- data ------------------------------------------------------------------------------------
def test_molecule_files_become_padded_token_rows_and_invalid_lines_are_reported(tmp_path):
    path = _write_smiles(tmp_path / "mols.smi", [*MOLECULES[:60], "C1CC", *MOLECULES[60:], "xyz"])
    with pytest.warns(UserWarning, match=r"2 of 122 SMILES in .*mols.smi are invalid \(lines 61, 122\)"):
        data = vaekit.data.load(str(path))
    info = data.info
    assert info.kind == "sequence" and info.tokenizer == DEFAULT_TOKENS == "smiles"
    assert info.likelihood == "categorical"
    assert info.vocabulary[:3] == ["<pad>", "<bos>", "<eos>"]
    assert len(data.train) + len(data.val) + len(data.test) == 120
    assert (len(data.test), len(data.val)) == (12, 11)  # 10% of all, then 10% of the rest
    rows = data.train.long()
    assert bool((rows[:, 0] == 1).all())
    eos = (rows == 2).int().argmax(dim=1)
    assert torch.equal(data.train_lengths, eos + 1)
    assert bool((rows[torch.arange(rows.shape[1]) > eos.unsqueeze(1)] == 0).all())  # pad after eos
    vocabulary = Vocabulary(info.vocabulary, "smiles")
    decoded = SmilesTokenizer().detokenize(vocabulary.decode(rows[0].tolist()))
    assert canonical(decoded) == data.extras["train_smiles"][0]


@pytest.mark.skipif(not (Path(os.environ.get("VAEKIT_DATA_DIR", "/nonexistent")) / "moses").is_dir(),
                    reason="needs VAEKIT_DATA_DIR with the MOSES files")
def test_moses_keeps_its_own_test_set_and_limit_subsamples_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "moses").mkdir()  # a run directory called moses does not hide the named set
    data = vaekit.data.load("moses", limit=300)
    assert data.info.name == "moses" and data.info.source == "moses:train"
    assert (len(data.train), len(data.val), len(data.test)) == (270, 30, 300)
    assert set(data.extras["test_smiles"]).isdisjoint(data.extras["train_smiles"])


def test_a_tokenised_set_is_cached_on_disk_and_rebuilt_when_the_file_changes(tmp_path, monkeypatch):
    from vaekit.data.molecules import cache as sequence_cache
    from vaekit.data.molecules import sequences

    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sequence_cache, "MIN_MOLECULES", 10)
    path = _write_smiles(tmp_path / "mols.smi", [*MOLECULES[:40], "C1CC"])
    with pytest.warns(UserWarning, match="1 of 41 SMILES"):
        first = vaekit.data.load(str(path))
    assert len(list((tmp_path / "cache" / "molecules").glob("*.safetensors"))) == 1

    def unread(*args, **kwargs):
        raise AssertionError("the cached set was read again")

    monkeypatch.setattr(sequences, "read_smiles", unread)
    with pytest.warns(UserWarning, match="1 of 41 SMILES"):  # the report is repeated from the cache
        second = vaekit.data.load(str(path))
    for name in ("train", "val", "test", "train_lengths"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert second.info == first.info and second.extras["train_smiles"] == first.extras["train_smiles"]
    _write_smiles(path, MOLECULES[:45])  # another file: another entry, read afresh
    with pytest.raises(AssertionError, match="read again"):
        vaekit.data.load(str(path))


def test_augmentation_adds_randomised_smiles_of_the_same_molecules(tmp_path):
    path = _write_smiles(tmp_path / "mols.smi", MOLECULES[:40])
    plain = vaekit.data.load(str(path), tokens="smiles")
    augmented = vaekit.data.load(str(path), tokens="smiles", augment=2)
    n = len(plain.train)
    assert len(augmented.train) == 3 * n
    smiles = augmented.extras["train_smiles"]
    assert [canonical(s) for s in smiles[n:2 * n]] == smiles[:n]
    assert sum(a != b for a, b in zip(smiles[n:2 * n], smiles[:n], strict=True)) > n // 2  # really rewritten


def test_length_buckets_group_similar_lengths_and_keep_every_example_once():
    lengths = torch.randint(5, 60, (1000,))
    data = Dataset(train=torch.zeros(1000, 60), info=DataInfo(name="t", shape=(60,), kind="sequence"),
                   train_lengths=lengths)
    order = data.train_order(torch.Generator().manual_seed(0), 10)
    assert torch.equal(order.sort().values, torch.arange(1000))
    assert torch.equal(order, data.train_order(torch.Generator().manual_seed(0), 10))
    spread = (lengths[order].reshape(100, 10).amax(1) - lengths[order].reshape(100, 10).amin(1)).float().mean()
    shuffled = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    random_spread = (lengths[shuffled].reshape(100, 10).amax(1) - lengths[shuffled].reshape(100, 10).amin(1))
    assert spread < 0.2 * random_spread.float().mean()


def test_sequence_data_and_other_models_refuse_each_other_before_writing(tmp_path):
    smi = _write_smiles(tmp_path / "mols.smi", MOLECULES[:30])
    with pytest.raises(VaekitError, match=r"model 'vae' does not take sequence data .*use --model seqvae"):
        vaekit.train(str(smi), {"model": "vae"}, {"epochs": 1}, tmp_path / "a", progress=False)
    with pytest.raises(VaekitError, match=r"model 'seqvae' takes sequences .* not the image data of 'digits'"):
        vaekit.train("digits", {"model": "seqvae"}, {"epochs": 1}, tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# -- training through the common trainer --------------------------------------------------------
def test_a_seqvae_run_gets_the_default_schedule_and_its_kl_stays_above_zero(trained):
    train = trained.train_config
    assert (train.kl_anneal, train.free_bits, train.batch_size) == ("linear:3", 0.1, 32)
    # precision auto, recorded as what it meant on this machine
    assert train.precision == ("bfloat16" if native_bfloat16(torch.device("cpu")) else "float32")
    kl = np.array(trained.summary["test"]["kl_per_dim"])
    assert (kl > 0.01).sum() >= 3, kl
    assert trained.config["data"]["info"]["vocabulary"] == trained.model.config.vocabulary
    assert trained.metrics[-1]["val_recon"] < trained.metrics[0]["val_recon"]


def test_resume_of_a_seqvae_run_ends_exactly_where_the_uninterrupted_run_ends(tmp_path, monkeypatch):
    smi = _write_smiles(tmp_path / "mols.smi")
    args = (str(smi), SMALL, {"epochs": 3, "batch_size": 16, "seed": 2})
    full = vaekit.train(*args, tmp_path / "full", progress=False)
    train_interrupted(args, tmp_path / "cut", monkeypatch, 1)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"]["epoch"] == 1
    resumed = vaekit.resume(tmp_path / "cut", progress=False)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full.metrics]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.metrics]


def test_the_property_head_learns_and_predicts_in_the_data_units(tmp_path):
    heavy = [to_mol(s).GetNumHeavyAtoms() for s in MOLECULES]
    csv = tmp_path / "mols.csv"
    csv.write_text("smiles,heavy\n" + "".join(f"{s},{h}\n" for s, h in zip(MOLECULES, heavy, strict=True)))
    data = {"source": str(csv), "properties": ["heavy"]}
    model = SMALL
    train = {"epochs": 15, "batch_size": 8, "lr": 3e-3, "lr_schedule": "constant"}
    untrained = vaekit.train(data, model, {**train, "epochs": 1, "lr": 1e-12}, tmp_path / "untrained", progress=False)
    run = vaekit.train(data, model, train, tmp_path / "run", progress=False)
    rows = run.load_data().train

    def property_mse(r):
        with torch.no_grad():
            return float(r.model.infer(rows).extras["property_mse"])

    assert property_mse(run) < 0.8 * property_mse(untrained), (property_mse(run), property_mse(untrained))
    assert "train_property_mse" in run.metrics[-1]
    assert run.data_info.targets == ["heavy"] and abs(run.data_info.target_mean[0] - np.mean(heavy)) < 2
    molecules = MoleculeModel.load(run.path)
    assert molecules.property_names == ["heavy"]
    z = molecules.encode(MOLECULES[:6]).requires_grad_(True)
    predicted = molecules.predict_properties(z)
    assert predicted.shape == (6, 1) and min(heavy) - 5 < float(predicted.detach().mean()) < max(heavy) + 5
    predicted.sum().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0


# -- molecules in and out ----------------------------------------------------------------------
def test_the_molecule_model_encodes_smiles_and_decodes_latents_to_canonical_smiles(trained):
    molecules = MoleculeModel.load(trained.path)
    z = molecules.encode(MOLECULES[:4])
    assert z.shape == (4, molecules.latent_dim) and molecules.property_names == []
    assert torch.allclose(z[0], molecules.encode(["C" + MOLECULES[0][1:]])[0])  # same molecule, same code
    for method in ("greedy", "sample", "beam"):
        decoded = molecules.decode(z, method=method, beam_width=3, generator=torch.Generator().manual_seed(0))
        assert len(decoded) == 4 and all(s is not None and canonical(s) == s for s in decoded)
    sampled = molecules.sample(50, generator=torch.Generator().manual_seed(0))
    assert all(s is not None for s in sampled)  # SELFIES: every draw is a molecule
    assert molecules.predict_properties(z) is None
    with pytest.raises(VaekitError, match="invalid SMILES 'not-a-molecule'"):
        molecules.encode(["not-a-molecule"])
    with pytest.raises(VaekitError, match=r"molecule 'C{300}' has 300 selfies tokens; this model takes at most"):
        molecules.encode(["C" * 300])


def test_a_smiles_token_run_decodes_with_none_for_invalid_strings(tmp_path):
    smi = _write_smiles(tmp_path / "mols.smi", MOLECULES[:60])
    run = vaekit.train({"source": str(smi), "tokens": "smiles"}, SMALL, {"epochs": 1}, tmp_path / "run",
                       progress=False)
    assert run.data_info.tokenizer == "smiles" and "Cl" in run.data_info.vocabulary
    molecules = MoleculeModel.load(run.path)
    decoded = molecules.sample(20, generator=torch.Generator().manual_seed(0))
    assert len(decoded) == 20
    assert all(s is None or canonical(s) == s for s in decoded)


def test_a_kekule_token_run_spells_every_bond_and_decodes_under_the_grammar(tmp_path):
    """Kekulé tokens: no aromatic atoms in the vocabulary, so the grammar alone decides validity;
    an untrained-enough decoder held to it makes more molecules than without it."""
    smi = _write_smiles(tmp_path / "mols.smi", MOLECULES[:60])
    run = vaekit.train({"source": str(smi), "tokens": "kekule"}, SMALL, {"epochs": 1}, tmp_path / "run",
                       progress=False)
    vocabulary = run.data_info.vocabulary
    assert run.data_info.tokenizer == "kekule" and "=" in vocabulary and not {"c", "n", "o"} & set(vocabulary)
    valid = {}
    for grammar in (False, True):
        molecules = MoleculeModel(load_run(run.path), grammar=grammar)
        decoded = molecules.sample(100, generator=torch.Generator().manual_seed(0))
        assert all(s is None or canonical(s) == s for s in decoded)
        valid[grammar] = sum(s is not None for s in decoded)
    assert valid[True] > valid[False], valid


def test_cli_trains_samples_and_writes_a_file_of_valid_molecules(tmp_path, capsys):
    smi = _write_smiles(tmp_path / "mols.smi")
    settings = tmp_path / "seqvae.yaml"
    settings.write_text("model:\n  embedding_dim: 16\n  encoder_hidden: 32\n  decoder_hidden: 64\n")
    run, gen = tmp_path / "run", tmp_path / "gen.smi"
    assert main(["train", str(smi), "--model", "seqvae", "--latent-dim", "8", "--epochs", "1", "--config",
                 str(settings), "--tokens", "selfies", "--out", str(run), "--quiet"]) == 0
    assert "run saved to" in capsys.readouterr().out
    assert main(["molecules", "sample", str(run), "-n", "40", "-o", str(gen), "--seed", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "40 of 40 valid (100.0%)" in out and "molecules/s" in out
    lines = gen.read_text().splitlines()
    assert len(lines) == 40 and all(canonical(s) == s for s in lines)
    gmm = tmp_path / "gmm.smi"  # the mixture fitted to the training codes after training
    assert main(["molecules", "sample", str(run), "-n", "20", "-o", str(gmm), "--sampler", "gmm", "--quiet"]) == 0
    assert "20 of 20 valid" in capsys.readouterr().out
    flow = latent.fit_diffusion_sampler(vaekit.open_run(run), hidden=16, blocks=1, train_steps=20)  # quick
    drawn = tmp_path / "flow.smi"  # the flow-matching model of the codes, saved in the run and used from there
    assert main(["molecules", "sample", str(run), "-n", "20", "-o", str(drawn), "--sampler", "diffusion",
                 "--quiet"]) == 0
    assert " of 20 valid" in capsys.readouterr().out and len(drawn.read_text().splitlines()) == 20
    assert latent.DiffusionSampler.load(run / latent.DIFFUSION_FILE).settings() == flow.settings()  # not refitted
    assert drawn.read_text() != gmm.read_text()
    assert main(["molecules", "sample", str(run), "-n", "5", "-o", str(tmp_path / "x.smi"), "--sampler",
                 "flow"]) == 2
    assert capsys.readouterr().err.strip() == "error: --sampler: expected prior, gmm, diffusion, got 'flow'"
    again = tmp_path / "again.smi"
    assert main(["molecules", "sample", str(run), "-n", "40", "-o", str(again), "--seed", "1", "--quiet"]) == 0
    assert again.read_text() == gen.read_text()  # same seed, same molecules


def test_the_cli_reports_dropped_smiles_as_one_warning_line(tmp_path, capsys):
    smi = _write_smiles(tmp_path / "mols.smi", [*MOLECULES[:40], "C1CC"])
    settings = tmp_path / "seqvae.yaml"
    settings.write_text("model:\n  embedding_dim: 8\n  encoder_hidden: 16\n  decoder_hidden: 16\n")
    assert main(["train", str(smi), "--model", "seqvae", "--latent-dim", "4", "--epochs", "1", "--config",
                 str(settings), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "SMILES" in line]
    assert lines == [f"warning: 1 of 41 SMILES in {smi} are invalid (line 41)"], lines


def test_an_unknown_token_through_the_cli_is_one_line_and_exit_2(trained, capsys):
    code = main(["molecules", "interpolate", str(trained.path), "C[Si](C)(C)C", "CCO", "--steps", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: unknown token '[Si]' in molecule 'C[Si](C)(C)C'") and err.count("\n") == 1, err


def test_the_image_and_table_commands_point_a_sequence_run_to_the_molecule_tools(trained, capsys):
    assert main(["sample", str(trained.path), "-n", "4"]) == 2
    assert f"models sequences (molecules): use vaekit molecules sample {trained.path}" in capsys.readouterr().err
    assert main(["reconstruct", str(trained.path), "-n", "4"]) == 2
    assert "MoleculeModel.load(run)" in capsys.readouterr().err


def test_reconstructions_and_samples_are_rows_like_the_data_with_predicted_properties():
    model = _toy_model(input_shape=(10,), property_names=["logP", "qed"], property_mean=[2.0, 0.5],
                       property_std=[1.0, 0.2])
    x = torch.tensor([[1, 3, 4, 2, 0, 0, 0, 0, 0.5, -1.0]])
    recon = model.reconstruct(x)
    assert recon.shape == (1, 10)
    z = model.encode(x).mean
    assert torch.allclose(recon[:, 8:], model.property_head(z), atol=1e-6)
    assert torch.allclose(model.predict_properties(z), model.property_head(z) * torch.tensor([1.0, 0.2]) +
                          torch.tensor([2.0, 0.5]), atol=1e-6)
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 10)


def test_sampling_refuses_a_run_that_is_not_a_sequence_vae(tmp_path, capsys):
    vaekit.train({"source": "digits", "limit": 100}, {"latent_dim": 2, "hidden": [16]}, {"epochs": 1},
                 tmp_path / "digits", progress=False)
    assert main(["molecules", "sample", str(tmp_path / "digits"), "-n", "5", "-o", str(tmp_path / "g.smi")]) == 2
    assert "is not a sequence VAE" in capsys.readouterr().err
    assert not (tmp_path / "g.smi").exists()


def test_molecule_options_on_other_data_are_refused():
    with pytest.raises(VaekitError, match="properties apply to molecules only, not to 'digits'"):
        vaekit.data.load("digits", properties=["logP"])
    with pytest.raises(VaekitError, match="tokens apply to molecules, not to the named dataset 'digits'"):
        vaekit.data.load("digits", tokens="smiles")
