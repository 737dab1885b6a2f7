"""Latent-space tools: each test checks what a tool means, not only that it runs.

One small VAE trained on 1000 digits (latent 8, ~4 s) serves most tests: it is good
enough that a logistic regression on its codes reads the digit, and it leaves at least
one latent dimension collapsed.
"""


import pytest
import torch
from sklearn.linear_model import LogisticRegression

import vaekit
from vaekit import latent
from vaekit.errors import VaekitError
from vaekit.latent.commands import write_arithmetic
from vaekit.models import VAE, VAEConfig


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("latent") / "digits"
    return vaekit.train({"source": "digits", "limit": 1000}, {"latent_dim": 8, "hidden": [128]}, {"epochs": 60},
                        out, progress=False)


@pytest.fixture(scope="module")
def data(run):
    return run.load_data()


@pytest.fixture(scope="module")
def train_codes(run, data):
    return latent.encode_means(run.model, data.train)


def test_encode_means_are_the_posterior_means_in_any_batch_size(run, data):
    x = data.test[:50]
    assert torch.allclose(latent.encode_means(run.model, x, batch_size=7), run.model.encode(x).mean, atol=1e-6)
    assert latent.encode_means(run.model, x).requires_grad is False


# -- interpolation ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolation_endpoints_decode_to_the_reconstructions_of_the_inputs(run, data, method):
    x1, x2 = data.test[0], data.test[1]
    path = latent.interpolate(run.model, x1, x2, steps=7, method=method)
    assert path.shape == (7, 1, 8, 8)
    recon = run.model.reconstruct(data.test[:2])
    torch.testing.assert_close(path[0], recon[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(path[-1], recon[1], atol=1e-6, rtol=0)
    assert (path[3] - recon[0]).abs().max() > 0.05  # and the middle is something else


def test_paths_include_their_endpoints_exactly():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, generator=g), torch.randn(8, generator=g) * 2
    for path in (latent.lerp(a, b, 5), latent.slerp(a, b, 5)):
        assert path.shape == (5, 8)
        assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    with pytest.raises(VaekitError, match="steps: expected at least 2"):
        latent.slerp(a, b, 1)


def test_slerp_keeps_every_norm_between_the_endpoints_norms_and_lerp_does_not():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):  # typical prior draws of different norms, and a nearly opposite pair
        a, b = torch.randn(16, generator=g) * 0.5, torch.randn(16, generator=g) * 2
        for z1, z2 in ((a, b), (a, -a * 3 + 1e-3 * b)):
            norms = latent.slerp(z1, z2, 12).norm(dim=1)
            lo, hi = sorted((z1.norm().item(), z2.norm().item()))
            assert norms.min() >= lo - 1e-5 and norms.max() <= hi + 1e-5
            assert torch.isfinite(norms).all()
    z1, z2 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])  # orthogonal codes of equal norm
    assert latent.lerp(z1, z2, 3)[1].norm() == pytest.approx(3 / 2**0.5)  # the straight line cuts inside
    assert latent.slerp(z1, z2, 3)[1].norm() == pytest.approx(3.0)


# -- attribute vectors -----------------------------------------------------------------------


def test_adding_a_class_vector_moves_a_classifier_on_the_codes_toward_that_class(run, data, train_codes):
    clf = LogisticRegression(max_iter=2000).fit(train_codes.numpy(), data.train_labels.numpy())
    assert clf.score(latent.encode_means(run.model, data.test).numpy(), data.test_labels.numpy()) > 0.8
    for target in range(10):
        vector = latent.class_vector(run.model, data.train, data.train_labels, target)
        others = data.test[data.test_labels != target]
        moved = latent.apply_vector(run.model, others, vector, [1.0])[:, 0]
        before = clf.predict_proba(latent.encode_means(run.model, others).numpy())[:, target]
        after = clf.predict_proba(latent.encode_means(run.model, moved).numpy())[:, target]
        assert (after > before).mean() > 0.7, target


def test_apply_vector_at_alpha_zero_is_the_reconstruction_and_analogy_a_a_c_is_c(run, data):
    x = data.test[:4]
    vector = latent.attribute_vector(run.model, data.test[:20], data.test[20:40])
    assert vector.shape == (8,)
    out = latent.apply_vector(run.model, x, vector, [-1.0, 0.0, 2.0])
    assert out.shape == (4, 3, 1, 8, 8)
    torch.testing.assert_close(out[:, 1], run.model.reconstruct(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(latent.analogy(run.model, x, x, data.test[4:8]), run.model.reconstruct(data.test[4:8]),
                               atol=1e-6, rtol=0)
    with pytest.raises(VaekitError, match="vector has 3 dimensions"):
        latent.apply_vector(run.model, x, torch.zeros(3), [1.0])


def test_write_arithmetic_takes_your_own_images_as_a_tensor_without_loading_a_split(run, data, tmp_path,
                                                                                      monkeypatch):
    vector = latent.attribute_vector(run.model, data.test[:20], data.test[20:40])
    latent.save_vector(run, "mine", vector)
    monkeypatch.setattr(run, "load_data", lambda: pytest.fail("a saved vector on given images needs no split"))
    x = data.test[:3]
    done = write_arithmetic(run, vector="mine", images=x, alphas=[0, 1], output=tmp_path / "a.png")
    assert done.grid.shape == (3, 3, 1, 8, 8) and (tmp_path / "a.png").is_file()
    torch.testing.assert_close(done.grid[:, 0], x)
    torch.testing.assert_close(done.grid[:, 1], run.model.reconstruct(x), atol=1e-6, rtol=0)
    one = write_arithmetic(run, vector="mine", images=x[0], alphas=[0], output=tmp_path / "b.png")
    assert one.grid.shape == (1, 2, 1, 8, 8)  # a single image needs no batch axis
    with pytest.raises(VaekitError, match=r"images: expected a tensor of shape \(N, 1, 8, 8\)"):
        write_arithmetic(run, vector="mine", images=torch.zeros(2, 8, 8), output=tmp_path / "c.png")
    with pytest.raises(VaekitError, match="--input and -n/--split are alternatives"):
        write_arithmetic(run, vector="mine", images=x, n=2, output=tmp_path / "d.png")


def test_vectors_round_trip_by_name_and_an_unknown_name_lists_the_saved_ones(tmp_path):
    with pytest.raises(VaekitError, match="none saved yet"):
        latent.load_vector(tmp_path, "smile")
    path = latent.save_vector(tmp_path, "smile", torch.arange(4.0))
    latent.save_vector(tmp_path, "glasses", torch.ones(4))
    assert path.name == latent.VECTORS_FILE and latent.saved_vector_names(tmp_path) == ["glasses", "smile"]
    assert torch.equal(latent.load_vector(tmp_path, "smile"), torch.arange(4.0))
    with pytest.raises(VaekitError, match=r"no attribute vector 'beard' .* \(saved: glasses, smile\)"):
        latent.load_vector(tmp_path, "beard")


def test_class_vector_with_an_absent_class_is_an_error(run, data):
    with pytest.raises(VaekitError, match="class 42: no examples"):
        latent.class_vector(run.model, data.test, data.test_labels, 42)


# -- the GMM sampler -------------------------------------------------------------------------


def test_gmm_draws_lie_closer_to_the_training_codes_than_prior_draws(run, data, train_codes):
    from sklearn.neighbors import KernelDensity

    kde = KernelDensity(bandwidth="scott").fit(train_codes.numpy())
    gmm = latent.GMMSampler(10).fit(train_codes)
    from_gmm = gmm.sample(500, seed=1)
    from_prior = run.model.prior_sample(500, generator=torch.Generator().manual_seed(1))
    assert kde.score_samples(from_gmm.numpy()).mean() > kde.score_samples(from_prior.numpy()).mean() + 2


def test_gmm_log_density_agrees_with_scikit_learn(train_codes):
    from sklearn.mixture import GaussianMixture

    for covariance_type in ("full", "diag", "tied", "spherical"):
        ours = latent.GMMSampler(4, covariance_type, seed=3).fit(train_codes)
        theirs = GaussianMixture(4, covariance_type=covariance_type, random_state=3).fit(train_codes.double().numpy())
        expected = torch.from_numpy(theirs.score_samples(train_codes[:100].double().numpy()))
        torch.testing.assert_close(ours.log_density(train_codes[:100]), expected)
        assert ours.sample(7, seed=0).shape == (7, 8)


def test_gmm_temperature_scales_the_spread_around_the_components(train_codes):
    gmm = latent.GMMSampler(1).fit(train_codes)
    cold, warm = gmm.sample(2000, temperature=0.5), gmm.sample(2000, temperature=1.0)
    ratio = (cold - gmm.means_[0].float()).std(0) / (warm - gmm.means_[0].float()).std(0)
    assert ratio.mean().item() == pytest.approx(0.5, abs=0.05)


def test_gmm_saved_sampler_gives_identical_samples_and_is_reused(run, data, tmp_path):
    sampler = latent.fit_gmm_sampler(run, n_components=5, data=data)
    assert (run.path / latent.GMM_FILE).is_file()
    loaded = latent.GMMSampler.load(run.path / latent.GMM_FILE)
    assert loaded.n_components == 5 and loaded.covariance_type == "full"
    assert torch.equal(loaded.sample(64, seed=3, temperature=0.7), sampler.sample(64, seed=3, temperature=0.7))
    assert torch.equal(latent.gmm_sampler(run).means_, sampler.means_)  # loaded, not refitted
    assert latent.gmm_sampler(run, n_components=3).n_components == 3  # refitted with the new size
    assert latent.GMMSampler.load(run.path / latent.GMM_FILE).n_components == 3
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(VaekitError, match="cannot read the GMM sampler"):
        latent.GMMSampler.load(tmp_path / "bad.safetensors")


def test_a_large_set_is_fitted_on_a_seeded_subset_and_only_that_subset_is_encoded(run, data, train_codes,
                                                                                   monkeypatch):
    n = len(train_codes)
    subset = latent.GMMSampler(3, seed=2, max_samples=n // 2)
    rows = subset.fit_rows(n)
    assert len(rows) == n // 2 and len(rows.unique()) == n // 2 and torch.equal(rows, subset.fit_rows(n))
    assert latent.GMMSampler(3, max_samples=n).fit_rows(n) is None  # no more than the limit: all of them
    expected = latent.GMMSampler(3, seed=2, max_samples=None).fit(train_codes[rows])
    torch.testing.assert_close(subset.fit(train_codes).means_, expected.means_)
    with pytest.raises(VaekitError, match="max_samples: expected a positive integer"):
        latent.GMMSampler(3, max_samples=0).fit(train_codes)
    with pytest.raises(VaekitError, match=r"3 components need at least 6 latents .*\(max_samples=4\)"):
        latent.GMMSampler(3, max_samples=4).fit(train_codes)

    encoded = []
    real_encode = latent.inputs.encode_means

    def counting(model, x, cond):
        encoded.append(len(x))
        return real_encode(model, x, cond)

    monkeypatch.setattr(latent.inputs, "encode_means", counting)
    fitted = latent.fit_gmm_sampler(run, n_components=3, data=data, max_samples=100)
    assert encoded == [100]
    assert latent.GMMSampler.load(run.path / latent.GMM_FILE).max_samples == fitted.max_samples == 100
    flow = latent.fit_diffusion_sampler(run, data=data, max_samples=100, hidden=16, blocks=1, train_steps=5)
    assert encoded == [100, 100] and flow.latent_dim == train_codes.shape[1]  # the same rule, the same subset
    assert (run.path / latent.DIFFUSION_FILE).is_file()


def test_a_sampler_fitted_for_other_weights_is_refitted(run, data):
    stale = latent.fit_gmm_sampler(run, n_components=4, data=data)
    stale.model_sha256_ = "0" * 64  # as if the run had been resumed since
    stale.save(run.path / latent.GMM_FILE)
    fresh = latent.gmm_sampler(run)
    assert fresh.model_sha256_ != stale.model_sha256_ and fresh.n_components == 10


def test_sample_from_prior_equals_model_sample_and_binarize_gives_binary_images(run):
    g = torch.Generator().manual_seed(5)
    assert torch.equal(latent.sample(run.model, 9, seed=5, temperature=0.8),
                       run.model.sample(9, temperature=0.8, generator=g))
    binary = latent.sample(run.model, 9, binarize=True)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    gmm = latent.GMMSampler(3).fit(torch.randn(100, 8))
    assert latent.sample(run.model, 4, sampler=gmm).shape == (4, 1, 8, 8)
    with pytest.raises(VaekitError, match=r"sampler: expected 'prior', a GMMSampler .* or a DiffusionSampler"):
        latent.sample(run.model, 4, sampler="gmm")


# -- dimensions ------------------------------------------------------------------------------


def test_traversal_orders_rows_by_kl_and_a_collapsed_row_is_constant(run, data):
    order, kl = latent.kl_order(run.model, data.test)
    assert torch.all(kl[order][:-1] >= kl[order][1:])
    values = torch.linspace(-3, 3, 7)
    images, dims, collapsed = latent.traversal(run.model, data.test[:1], values=values, reference=data.test)
    assert images.shape == (8, 7, 1, 8, 8) and dims == order.tolist()
    assert collapsed == [bool(kl[d] < latent.COLLAPSED_KL) for d in dims]
    assert any(collapsed), "this model should leave a dimension unused"
    change = (images - images[:, 3:4]).abs().mean(dim=(1, 2, 3, 4))  # mean pixel change from the row's centre
    assert change[collapsed.index(True)] < 0.015  # a collapsed dimension leaves the picture (nearly) unchanged
    assert change[0] > 0.05 and change[0] > 8 * change[collapsed.index(True)]  # the most used one changes it
    top3, dims3, _ = latent.traversal(run.model, data.test[:1], dims=3, reference=data.test)
    assert dims3 == dims[:3] and top3.shape[0] == 3
    _, picked, _ = latent.traversal(run.model, data.test[:1], dims=[dims[2], dims[0]], reference=data.test)
    assert picked == [dims[0], dims[2]]
    with pytest.raises(VaekitError, match="one input"):
        latent.traversal(run.model, data.test[:2])


# -- maps ------------------------------------------------------------------------------------


def test_latent_map_projects_to_two_dimensions(run, data):
    x = data.test[:60]
    for method in ("pca", "tsne", "auto"):
        assert latent.latent_map(run.model, x, method=method).shape == (60, 2)
    with pytest.raises(VaekitError, match="method: expected auto, pca or tsne"):
        latent.latent_map(run.model, x, method="umap")


def test_a_two_dimensional_latent_is_its_own_map_and_its_manifold_is_a_quantile_grid(run, data):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16])).eval()
    x = data.test[:10]
    torch.testing.assert_close(latent.latent_map(model, x, method="tsne"), latent.encode_means(model, x))
    grid = latent.manifold_grid(model, n=3, span=2.0)
    corners = torch.tensor([[-2.0, 2.0], [0.0, 2.0], [2.0, 2.0], [-2.0, 0.0], [0.0, 0.0], [2.0, 0.0],
                            [-2.0, -2.0], [0.0, -2.0], [2.0, -2.0]])  # rows top to bottom: z2 falls
    torch.testing.assert_close(grid, latent.decode_means(model, corners), atol=1e-5, rtol=0)
    inner = latent.manifold_grid(model, n=4, span=2.0)  # inner points at equal prior mass, not equal spacing
    assert inner.shape == (16, 1, 8, 8)
    with pytest.raises(VaekitError, match="needs a 2-D latent space"):
        latent.manifold_grid(run.model)


def test_tsne_runs_on_one_openmp_thread(monkeypatch):
    """Spinning OpenMP threads made t-SNE 20-40x slower on a busy machine; maps use one."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_info

    seen = []
    fit_transform = TSNE.fit_transform

    def spy(self, x, y=None):
        seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"})
        return fit_transform(self, x)

    monkeypatch.setattr(TSNE, "fit_transform", spy)
    coords, used = latent.project_2d(torch.randn(20, 3), method="tsne")
    assert used == "tsne" and coords.shape == (20, 2)
    assert seen == [{1}]


def test_identical_codes_are_mapped_by_pca_and_refused_by_tsne():
    """scikit-learn's t-SNE crashes the process on identical points (a collapsed encoder):
    ``auto`` maps them with PCA, and ``tsne`` refuses them with one line."""
    same = torch.zeros(50, 4)
    coords, method = latent.project_2d(same)
    assert method == "pca" and coords.shape == (50, 2) and torch.isfinite(coords).all()
    with pytest.raises(VaekitError, match="distinct codes"):
        latent.project_2d(same, method="tsne")
