"""``stargan.load``: a model folder as its family's inference class, by the kind it declares.

A new model family is one entry in ``LOADERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from stargan.cyclegan import PairwiseModel
from stargan.model_folder import PAIRS_KIND, V1_KIND, V2_KIND, declared_kind
from stargan.stylemodel import StyleModel
from stargan.translate import Translator

LOADERS: dict[str, Callable[..., Any]] = {
    V1_KIND: Translator.from_pretrained,
    V2_KIND: StyleModel.from_pretrained,
    PAIRS_KIND: PairwiseModel.from_pretrained,
}


def load_model(path: str | Path, device: str = "cpu", precision: str = "auto") -> Any:
    """A model folder as its family's inference class: a v1 ``Translator``, a v2
    ``StyleModel`` or a ``PairwiseModel``; folders of no known kind go to the v1 loader,
    whose errors name what is wrong. ``precision``: the generator's arithmetic for v1 and
    v2 (:mod:`stargan.inference_precision`); the CycleGAN baseline runs in fp32."""
    path = Path(path)
    kind = declared_kind(path) or V1_KIND
    load = LOADERS.get(kind, Translator.from_pretrained)
    if kind == PAIRS_KIND:
        return load(path, device=device)
    return load(path, device=device, precision=precision)
