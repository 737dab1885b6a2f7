"""Sharing: ``save_pretrained`` / ``from_pretrained`` round trips for every family (bit-identical
outputs), the model card, and ``push_to_hub`` / a Hub download against a mocked Hub (only
huggingface_hub's network calls are replaced: they copy folders under a temporary directory)."""

import fnmatch
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

import vaekit
from vaekit import hub
from vaekit.errors import VaekitError
from vaekit.models import MODELS, build

TOKENS = ["<pad>", "<bos>", "<eos>", "C", "N", "O"]
TINY = {
    "vae": {"latent_dim": 3, "hidden": [16]},
    "cvae": {"latent_dim": 3, "hidden": [16], "num_classes": 3},
    "hvae": {"groups": [2, 3], "hidden": [16]},
    "vqvae": {"channels": [4, 8], "res_blocks": 1, "res_channels": 4, "codebook_size": 8, "code_dim": 2,
              "dead_code_steps": 0, "prior_channels": 4, "prior_layers": 1, "prior_epochs": 1, "prior_batch_size": 8},
    "seqvae": {"latent_dim": 3, "vocabulary": TOKENS, "embedding_dim": 4, "encoder_hidden": 8, "decoder_hidden": 8},
    "codec": {"channels": 4, "latent_channels": 2, "stages": 1, "density_filters": [2]},
}


def _inputs(family):
    if MODELS[family][1].sequences:
        rows = torch.zeros(8, 8)
        rows[:, 0], rows[:, 1:4], rows[:, 4] = 1, 3, 2  # bos, three tokens, eos, padding
        return rows, None
    x = torch.tensor(load_digits().data[:8].reshape(-1, 1, 8, 8) >= 8, dtype=torch.float32)
    return x, (torch.arange(8) % 3 if MODELS[family][1].conditional else None)


def _outputs(model, x, cond):
    torch.manual_seed(0)
    loss = model.loss(x, cond)
    return [model.encode(x, cond).mean, loss.total, loss.recon, loss.kl,
            model.sample(4, generator=torch.Generator().manual_seed(0))]


def test_every_family_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_save_pretrained_from_pretrained_round_trip_is_bit_identical(family, tmp_path, monkeypatch):
    x, cond = _inputs(family)
    torch.manual_seed(0)
    model = build({"model": family, "input_shape": tuple(x.shape[1:]), **TINY[family]})
    if model.learned_prior:
        model.fit_prior(x, cond, seed=0)
    model.eval()
    folder = model.save_pretrained(tmp_path / "shared")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    assert f"# vaekit {family}" in (folder / "README.md").read_text()

    def no_unpickling(*args, **kwargs):
        raise AssertionError("loading a shared model must not unpickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    loaded = vaekit.from_pretrained(folder)
    assert type(loaded) is type(model) and not loaded.training
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for before, after in zip(_outputs(model, x, cond), _outputs(loaded, x, cond), strict=True):
        assert torch.equal(before, after)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return vaekit.train({"source": "digits", "limit": 200}, {"latent_dim": 4, "hidden": [32]}, {"epochs": 2},
                        tmp_path_factory.mktemp("hub") / "digits-run", progress=False)


def test_a_run_shares_its_data_figures_pictures_and_command(run, tmp_path):
    folder = hub.save_pretrained(run, tmp_path / "shared")
    assert {"config.json", "model.safetensors", "README.md", "summary.json", "samples.png",
            "reconstructions.png"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: vaekit\n")
    assert "# vaekit vae on digits" in card and "- latent dimensions: 4" in card
    assert f"| {run.summary['test']['elbo']:.2f} |" in card
    assert "![samples](samples.png)" in card
    assert "vaekit train digits --model vae" in card and "--set train.epochs=2" in card
    assert "--set data.limit=200" in card and "--set model.hidden=[32]" in card
    shared = hub.open_pretrained(folder)
    assert shared.config["data"] == run.config["data"] and shared.summary == run.summary


class FakeHub:
    """huggingface_hub's network boundary, over folders: ``root/<org>/<name>``."""

    def __init__(self, root: Path):
        self.root, self.uploads = root, []

    def create_repo(self, repo_id, private=False, exist_ok=False, **_):
        (self.root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

    def upload_folder(self, repo_id, folder_path, commit_message="", **_):
        self.uploads.append((repo_id, commit_message, sorted(p.name for p in Path(folder_path).iterdir())))
        shutil.copytree(folder_path, self.root / repo_id, dirs_exist_ok=True)
        return f"https://huggingface.co/{repo_id}/commit/0"

    def snapshot_download(self, repo_id, revision=None, token=None, allow_patterns=None, **_):
        source = self.root / repo_id
        if not source.is_dir():
            raise FileNotFoundError(f"404: {repo_id}")
        target = self.root.parent / "cache" / repo_id.replace("/", "--")
        target.mkdir(parents=True, exist_ok=True)
        for p in source.iterdir():
            if allow_patterns is None or any(fnmatch.fnmatch(p.name, pat) for pat in allow_patterns):
                shutil.copy(p, target / p.name)
        return str(target)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake.create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake.upload_folder)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    return fake


def test_push_to_hub_then_from_pretrained_by_repo_id(run, fake_hub):
    url = hub.push_to_hub(run, "someone/digits-vae", commit_message="first")
    assert url.startswith("https://huggingface.co/someone/digits-vae")
    repo, message, files = fake_hub.uploads[0]
    assert (repo, message) == ("someone/digits-vae", "first") and "README.md" in files
    (fake_hub.root / repo / "evil.pkl").write_bytes(pickle.dumps(object()))  # never downloaded
    model = vaekit.from_pretrained("someone/digits-vae")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in run.model.state_dict().items())
    cached = fake_hub.root.parent / "cache" / "someone--digits-vae"
    assert not (cached / "evil.pkl").exists()
    x = run.load_data().test[:4]
    assert torch.equal(model.reconstruct(x), run.model.reconstruct(x))


def test_a_bare_model_pushes_too_and_hub_errors_are_one_line(fake_hub):
    model = build({"model": "vae", "input_shape": (1, 8, 8), "latent_dim": 2, "hidden": [8]})
    model.push_to_hub("someone/bare")
    assert fake_hub.uploads[0][2] == ["README.md", "config.json", "model.safetensors"]
    loaded = vaekit.from_pretrained("someone/bare").state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    with pytest.raises(VaekitError, match="someone/missing: cannot download from the Hugging Face Hub"):
        vaekit.from_pretrained("someone/missing")
    with pytest.raises(VaekitError, match="not a model folder"):
        vaekit.from_pretrained("no/such/folder")


def test_save_pretrained_refuses_the_zoo_and_files_it_did_not_write(tmp_path):
    from vaekit.sharing import ZOO

    model = build({"model": "vae", "input_shape": (1, 8, 8), **TINY["vae"]})
    with pytest.raises(VaekitError, match="pretrained models"):
        model.save_pretrained(ZOO / "not-a-model")
    assert not (ZOO / "not-a-model").exists()
    for name, text in (("README.md", "# my project\n"), ("config.json", '{"lr": 0.1}\n')):
        folder = tmp_path / name.replace(".", "-")
        folder.mkdir()
        (folder / name).write_text(text)
        with pytest.raises(VaekitError, match=f"{name}: exists and is not a vaekit"):
            model.save_pretrained(folder)
        assert (folder / name).read_bytes() == text.encode() and {p.name for p in folder.iterdir()} == {name}
    again = model.save_pretrained(tmp_path / "shared")  # saving over a vaekit folder stays allowed
    assert model.save_pretrained(again) == again
