"""``model.g_cond_norm``: the label sets the scale and bias after each of G's instance
norms (conditional instance norm), in G, training, config checks and model folders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan.errors import StarGANError
from stargan.export import export_model
from stargan.models.layers import CondInstanceNorm
from stargan.models.v1 import Generator
from stargan.presets import get_preset
from stargan.quantize import Int8Generator
from stargan.train import prepare_config
from stargan.translate import Translator
from test_train import _trainer


def _label_blind(G: Generator) -> Generator:
    """G whose first conv ignores the tiled label channels."""
    first = G.main[0]
    with torch.no_grad():
        getattr(first, "layer", first).weight[:, 3:] = 0.0
    return G


def test_the_label_reaches_g_through_its_norms() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    c_a, c_b = torch.tensor([[1.0, 0.0]] * 2), torch.tensor([[0.0, 1.0]] * 2)
    plain = _label_blind(Generator(2, 8, 1)).eval()
    assert torch.equal(plain(x, c_a), plain(x, c_b))  # no other way in
    cond = _label_blind(Generator(2, 8, 1, cond_norm=True)).eval()
    norms = [m for m in cond.modules() if isinstance(m, CondInstanceNorm)]
    assert len(norms) == 3 + 2 + 2  # stem, 2 down, the residual block's 2, 2 up
    assert torch.equal(cond(x, c_a), cond(x, c_b))  # FiLM starts at zero: the plain G
    with torch.no_grad():
        for m in norms:
            m.film.weight.normal_(0, 0.5)
    assert (cond(x, c_a) - cond(x, c_b)).abs().max() > 1e-3
    assert not cond.is_paper and plain.is_paper


def _cfg(**train):
    sets = ["model.g_cond_norm=true", "model.g_output=mask", "model.g_upsample=resize"]
    cfg = prepare_config(get_preset("tiny"), sets)
    return replace(cfg, train=replace(cfg.train, **train))


def test_training_learns_the_norms_label_weights(tmp_path: Path) -> None:
    tr = _trainer(_cfg(), tmp_path / "run")  # 10 iterations: the G step at 4 has a learning rate
    films = [m.film.weight for m in tr.G.modules() if isinstance(m, CondInstanceNorm)]
    assert films and all(w.abs().sum() == 0 for w in films)
    for _ in range(tr.cfg.optim.n_critic):
        tr.train_step()
    assert all(w.abs().sum() > 0 for w in films)


def test_a_model_folder_keeps_the_option(tmp_path: Path) -> None:
    cfg = _cfg(num_iters=4, num_iters_decay=2, ckpt_every=4)
    _trainer(cfg, tmp_path / "run").fit(progress=False)
    model = export_model(tmp_path / "run", tmp_path / "model")
    tr = Translator.from_pretrained(model, precision="fp32")
    assert tr.model_cfg.g_cond_norm and tr.G.cond_norm
    x = tr.preprocess(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    assert tr.apply(x, "Male=1").shape == (2, 3, 16, 16)
    with pytest.raises(StarGANError, match="g_cond_norm"):
        Int8Generator(tr.G)  # its layer plan is the paper's G
    from stargan.export_formats import check_parity, export_torchscript

    export_torchscript(model, tmp_path / "G.pt")
    assert check_parity(model, tmp_path / "G.pt")["max_abs_diff"] < 1e-4


def test_v2_refuses_the_option() -> None:
    with pytest.raises(StarGANError, match="g_cond_norm"):
        prepare_config(get_preset("tiny-v2"), ["model.g_cond_norm=true"])


@pytest.mark.parametrize("skip", [False, True])
def test_torchscript_compiles_the_conditioned_g(skip: bool) -> None:
    torch.manual_seed(0)
    G = Generator(2, 8, 1, skip=skip, output="mask", upsample="resize", cond_norm=True).eval()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, CondInstanceNorm):
                m.film.weight.normal_(0, 0.5)
    x, c = torch.randn(2, 3, 16, 16), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scripted = torch.jit.script(G)
    torch.testing.assert_close(scripted(x, c), G(x, c))
    head = G.main[:3]  # a slice is the same kind of sequence, called with the label
    assert type(head) is type(G.main) and len(head) == 3
    assert head(x.new_zeros(2, 5, 16, 16), c).shape == (2, 8, 16, 16)
