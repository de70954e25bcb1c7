"""Multi-attribute translation (StarGAN paper Fig. 4): hair colour + sex, hair + age,
sex + age, and all three at once.

Every combination of a multi-label dataset's factors (``LabelSpec.multi_combinations``:
each hair colour in turn, sex and age flipped) is applied to the test images it changes
in every named domain. On built-in data each translation is scored against its exact
ground truth, as ``counterfactual`` scores single changes; on real data the ResNet-18
judge of ``classification`` reads it: right only when every changed attribute reads
right, and the attributes the combination leaves alone should read as before.
"""

from __future__ import annotations

from typing import Any

from stargan.evaluate import classification, counterfactual
from stargan.evaluate.metrics import EvalContext, Metric


def run_multi_attribute(ctx: EvalContext) -> dict[str, Any]:
    if counterfactual.why_not(ctx) is None:
        return counterfactual.run_counterfactual(ctx, changes="multi")
    return classification.run_classification(ctx, how="multi")


def _why_not(ctx: EvalContext) -> str | None:
    if any(spec.multi_combinations() for spec in ctx.tr.layout.specs):
        return None
    return "needs multi-label attributes of at least two kinds (e.g. hair colour and sex)"


METRIC = Metric(
    "multi-attribute",
    "translations that change several attributes at once (StarGAN Fig. 4): against the "
    "exact ground truth on built-in data, else judged by a ResNet-18 trained on real images",
    run_multi_attribute,
    _why_not,
    formats=counterfactual.METRIC.formats | classification.METRIC.formats,
)
