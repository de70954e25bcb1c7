"""Losses as plain functions of tensors, one module per family: ``v1`` (StarGAN), ``v2``
(StarGAN v2), ``cyclegan`` (the pairwise baseline), and ``terms``, the terms they share.
``stargan.losses`` itself offers the v1 losses and the shared terms, as it always has."""

from stargan.losses.terms import (
    classification_loss,
    classifier_gradient_penalty,
    gradient_penalty,
    r1_penalty,
    total_variation,
)
from stargan.losses.v1 import Parts, adversarial, d_loss, g_loss

__all__ = [
    "Parts",
    "adversarial",
    "classification_loss",
    "classifier_gradient_penalty",
    "d_loss",
    "g_loss",
    "gradient_penalty",
    "r1_penalty",
    "total_variation",
]
