"""Domain labels: what the vector c means, and the target labels built from it.

Multi-label data (CelebA attributes) uses 0/1 vectors with optional mutually exclusive
groups (the hair colours); categorical data (RaFD expressions) uses one-hot vectors. Both
are float tensors of width ``dim`` so the generator sees the same kind of input.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from typing import Literal

import torch

from stargan.errors import StarGANError

LabelKind = Literal["multi", "categorical"]


@dataclass(frozen=True)
class LabelSpec:
    names: tuple[str, ...]
    kind: LabelKind = "multi"
    exclusive_groups: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.names:
            raise StarGANError("a label spec needs at least one domain name")
        if len(set(self.names)) != len(self.names):
            raise StarGANError(f"duplicate domain names in {list(self.names)}")
        if self.kind not in ("multi", "categorical"):
            raise StarGANError(f"label kind must be 'multi' or 'categorical', not {self.kind!r}")
        for group in self.exclusive_groups:
            for name in group:
                self.index(name)

    @property
    def dim(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        if name in self.names:
            return self.names.index(name)
        close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise StarGANError(f"unknown domain {name!r}{hint}; valid: {', '.join(self.names)}")

    def group_of(self, name: str) -> tuple[str, ...] | None:
        return next((g for g in self.exclusive_groups if name in g), None)

    def to_dict(self) -> dict:
        return {
            "names": list(self.names),
            "kind": self.kind,
            "exclusive_groups": [list(g) for g in self.exclusive_groups],
        }

    @classmethod
    def from_dict(cls, d: dict) -> LabelSpec:
        """From JSON data (a model folder's ``labels``); malformed data is a StarGANError."""
        try:
            names, groups = d["names"], d["exclusive_groups"]
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise TypeError("names must be a list of strings")
            return cls(tuple(names), d["kind"], tuple(tuple(g) for g in groups))
        except (TypeError, KeyError) as err:
            raise StarGANError(f"malformed labels entry ({err})") from err

    # ------------------------------------------------------------------ targets
    def random_targets(self, c_org: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Training targets: the batch's labels permuted (as the official code).

        Rows of an exclusive group with more than one active entry (possible in real
        CelebA labels) keep one of them at random, so a target never asks for two hair
        colours at once. An all-zero group stays zero: "none of these" is a real domain.
        """
        perm = torch.randperm(c_org.size(0), generator=generator)
        c_trg = c_org[perm.to(c_org.device)].clone()
        for group in self.exclusive_groups:
            cols = [self.index(n) for n in group]
            c_trg[:, cols] = _keep_one(c_trg[:, cols], generator)
        return c_trg

    def single_targets(
        self,
        c_org: torch.Tensor,
        generator: torch.Generator,
        weights: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Training targets that each change one domain of the row, drawn among the domains
        whose single change (:meth:`single_changes`) changes that row, uniformly or in
        proportion to ``weights`` (domain name: relative chance, default 1): the task the
        paper's figures and our scores ask of G. A row no single change alters keeps its
        labels."""
        candidates = torch.stack([c for _, c in self.single_changes(c_org)], 1)  # [N, D, c]
        changes = (candidates != c_org.unsqueeze(1)).any(2).float()  # [N, D]
        rows = changes.sum(1) > 0
        if weights:
            scale = torch.ones(self.dim)
            for name, weight in weights.items():
                scale[self.index(name)] = weight  # an unknown name: StarGANError
            changes = changes * scale.to(changes.device)
        weights_rows = torch.where(rows.unsqueeze(1), changes, torch.ones_like(changes))
        pick = torch.multinomial(weights_rows.cpu(), 1, generator=generator).flatten()
        c_trg = candidates[torch.arange(c_org.size(0)), pick.to(c_org.device)]
        return torch.where(rows.unsqueeze(1), c_trg, c_org)

    def training_targets(
        self,
        c_org: torch.Tensor,
        generator: torch.Generator,
        how: str = "permute",
        weights: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Targets for a training batch (``train.targets``): ``permute``, the batch's labels
        permuted (the paper); ``single``, one domain changed per row (drawn with
        ``weights``, see :meth:`single_targets`); ``mixed``, each row one or the other with
        equal chance."""
        if how == "permute":
            return self.random_targets(c_org, generator)
        if how == "single":
            return self.single_targets(c_org, generator, weights)
        if how == "mixed":
            permuted = self.random_targets(c_org, generator)
            single = self.single_targets(c_org, generator, weights)
            coin = torch.rand(c_org.size(0), 1, generator=generator).to(c_org.device) < 0.5
            return torch.where(coin, single, permuted)
        raise StarGANError(f"unknown target sampling {how!r}")

    def set_domain(self, c_org: torch.Tensor, name: str, value: float = 1.0) -> torch.Tensor:
        """Targets with one domain set: its exclusive group (or, categorical, all) cleared."""
        i = self.index(name)
        c_trg = c_org.clone()
        if self.kind == "categorical":
            c_trg.zero_()
            c_trg[:, i] = 1.0
            return c_trg
        group = self.group_of(name)
        if group is not None and value:
            c_trg[:, [self.index(n) for n in group]] = 0.0
        c_trg[:, i] = value
        return c_trg

    def single_changes(self, c_org: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """One target per domain, as the paper's figures: a group member or class is set,
        a free binary attribute is flipped."""
        return [(name, self.change(c_org, (name,))) for name in self.names]

    def change(self, c_org: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
        """Targets that change each of ``names``: a group member or class is set, a free
        binary attribute is flipped; the other domains keep ``c_org``."""
        c_trg = c_org.clone()
        for name in names:
            i = self.index(name)
            if self.kind == "multi" and self.group_of(name) is None:
                c_trg[:, i] = 1.0 - c_org[:, i]
            else:
                c_trg = self.set_domain(c_trg, name, 1.0)
        return c_trg

    def factors(self) -> list[tuple[str, ...]]:
        """What a multi-label target can change independently, in name order: each
        exclusive group (one member at a time) and each binary attribute outside them."""
        out: list[tuple[str, ...]] = []
        for name in self.names:
            factor = self.group_of(name) or (name,)
            if factor not in out:
                out.append(factor)
        return out

    def multi_combinations(self) -> list[tuple[str, ...]]:
        """The paper's multi-attribute translations (Fig. 4: hair + gender, hair + age,
        gender + age, all three): every pair of factors and, with three or more, all of
        them, one domain per factor (each hair colour in turn). Empty for categorical
        labels and for fewer than two factors."""
        factors = self.factors() if self.kind == "multi" else []
        sizes = sorted({2, len(factors)}) if len(factors) >= 2 else []
        return [
            names
            for size in sizes
            for combo in itertools.combinations(factors, size)
            for names in itertools.product(*combo)
        ]

    def changes(self, how: str = "single") -> list[tuple[str, ...]]:
        """The domain combinations a score translates to: one domain at a time
        (``single``, :meth:`single_changes`) or :meth:`multi_combinations` (``multi``)."""
        if how == "single":
            return [(name,) for name in self.names]
        if how == "multi":
            return self.multi_combinations()
        raise StarGANError(f"changes must be 'single' or 'multi', not {how!r}")

    def matching_rows(self, c: torch.Tensor, assignments: dict[str, float]) -> torch.Tensor:
        """Rows [N] bool whose labels have every value of ``assignments`` ({domain: 0/1})."""
        rows = torch.ones(c.size(0), dtype=torch.bool, device=c.device)
        for name, value in assignments.items():
            rows &= (c[:, self.index(name)] > 0.5) == (value > 0.5)
        return rows

    def changed_rows(self, c_org: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
        """Rows [N] bool where :meth:`change` alters every one of ``names`` (a hair colour
        the input already has is not a change)."""
        c_trg = self.change(c_org, names)
        cols = [self.index(n) for n in names]
        return (c_trg[:, cols] != c_org[:, cols]).all(1)

    def from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Labels as a classifier's logits [N, dim] say: one-hot argmax (categorical), else
        0/1 by sign with at most one member of each exclusive group (the most likely)."""
        if self.kind == "categorical":
            return torch.nn.functional.one_hot(logits.argmax(1), self.dim).to(logits.dtype)
        c = (logits > 0).to(logits.dtype)
        for group in self.exclusive_groups:
            cols = [self.index(n) for n in group]
            best = logits[:, cols].argmax(1)
            keep = torch.nn.functional.one_hot(best, len(cols)).to(logits.dtype)
            c[:, cols] = keep * c[:, cols].amax(1, keepdim=True)
        return c

    def parse_assignments(self, text: str) -> dict[str, float]:
        """Parse ``Blond_Hair=1,Male=0`` (values 0/1, true/false) into {name: value}."""
        values = parse_pairs(text, example=self.names[0])
        self.check_assignments(values)
        return values

    def check_assignments(self, values: dict[str, float]) -> None:
        """Refuse unknown names and two members of an exclusive group set to 1 (two hair
        colours; for categorical labels, two classes)."""
        for name in values:
            self.index(name)
        on = [n for n, v in values.items() if v > 0.5]
        groups = [tuple(self.names)] if self.kind == "categorical" else self.exclusive_groups
        for group in groups:
            both = [n for n in on if n in group]
            if len(both) > 1:
                raise StarGANError(
                    f"{' and '.join(both)} cannot both be 1: one of {', '.join(group)} at a time"
                )

    def apply(self, c_org: torch.Tensor, assignments: dict[str, float]) -> torch.Tensor:
        c_trg = c_org.clone()
        for name, value in assignments.items():
            if self.kind == "categorical" and not value:
                raise StarGANError(f"categorical domain {name!r} can only be set to 1")
            c_trg = self.set_domain(c_trg, name, value)
        return c_trg


def parse_pairs(text: str, example: str = "Male") -> dict[str, float]:
    """``A=1,B=0`` (values 0/1, true/false; a bare name means 1) -> {name: value}; the
    names are not checked here."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        if name.strip() in values:
            raise StarGANError(f"{name.strip()!r} is given twice in the target {text!r}")
        values[name.strip()] = _parse_bool(raw.strip() if sep else "1", name)
    if not values:
        raise StarGANError(f"empty target {text!r}; expected e.g. {example}=1")
    return values


def _keep_one(block: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep one active entry per row (chosen at random) where a row has several."""
    noise = torch.rand(block.shape, generator=generator).to(block.device)
    score = torch.where(block > 0.5, noise + 1.0, torch.zeros_like(noise))
    keep = torch.zeros_like(block)
    keep.scatter_(1, score.argmax(1, keepdim=True), 1.0)
    return keep * (block > 0.5).any(1, keepdim=True).to(block.dtype)


def _parse_bool(raw: str, name: str) -> float:
    table = {"1": 1.0, "true": 1.0, "yes": 1.0, "0": 0.0, "-1": 0.0, "false": 0.0, "no": 0.0}
    if raw.lower() not in table:
        raise StarGANError(f"value for {name!r} must be 0 or 1, not {raw!r}")
    return table[raw.lower()]
