"""The label layout of one or several datasets (paper section 3.2, the mask vector).

One dataset: the label is its own vector c. N >= 2 datasets: the generator's label is
``[c_1, ..., c_N, m]`` with ``m`` one-hot over the datasets and the other datasets'
parts zero; D_cls predicts ``[c_1, ..., c_N]`` (no mask), and each dataset's
classification loss uses only its own slice. Domains of a joint layout are named
``dataset.domain`` (``ckplus.happy``); a domain name found in one dataset only may
also be given bare.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError


@dataclass(frozen=True)
class LabelLayout:
    datasets: tuple[str, ...]
    specs: tuple[LabelSpec, ...]

    def __post_init__(self) -> None:
        if not self.specs or len(self.specs) != len(self.datasets):
            raise StarGANError("a label layout needs one label spec per dataset")
        if len(set(self.datasets)) != len(self.datasets):
            raise StarGANError(f"dataset names must differ: {list(self.datasets)}")

    @classmethod
    def single(cls, spec: LabelSpec, dataset: str = "") -> LabelLayout:
        return cls((dataset,), (spec,))

    @property
    def joint(self) -> bool:
        return len(self.specs) > 1

    @property
    def cls_dim(self) -> int:
        """Width of D_cls's output: all datasets' labels, no mask."""
        return sum(s.dim for s in self.specs)

    @property
    def mask_dim(self) -> int:
        return len(self.specs) if self.joint else 0

    @property
    def dim(self) -> int:
        """Width of the generator's label input."""
        return self.cls_dim + self.mask_dim

    def part(self, i: int) -> slice:
        """Columns of dataset ``i`` in the label (and in D_cls's logits)."""
        start = sum(s.dim for s in self.specs[:i])
        return slice(start, start + self.specs[i].dim)

    def encode(self, i: int, c_part: torch.Tensor) -> torch.Tensor:
        """Dataset ``i``'s labels [N, d_i] -> full labels [N, dim]: other parts zero, mask i."""
        if not self.joint:
            return c_part
        c = c_part.new_zeros(c_part.size(0), self.dim)
        c[:, self.part(i)] = c_part
        c[:, self.cls_dim + i] = 1.0
        return c

    def with_mask(self, c: torch.Tensor, dataset: str) -> torch.Tensor:
        """Full labels ``c`` with the mask vector naming ``dataset`` instead of the one they
        were encoded with (paper Fig. 8: an expression asked with the CelebA mask); the
        label parts are left as they are."""
        if not self.joint:
            raise StarGANError("a mask vector belongs to joint models (several datasets)")
        if dataset not in self.datasets:
            known = ", ".join(self.datasets)
            raise StarGANError(f"unknown dataset {dataset!r} for the mask; this model's: {known}")
        c = c.clone()
        c[:, self.cls_dim :] = 0.0
        c[:, self.cls_dim + self.datasets.index(dataset)] = 1.0
        return c

    def qualified(self, i: int, domain: str) -> str:
        return f"{self.datasets[i]}.{domain}" if self.joint else domain

    def domain_names(self) -> list[str]:
        return [self.qualified(i, n) for i, s in enumerate(self.specs) for n in s.names]

    def find(self, name: str) -> tuple[int, str]:
        """(dataset index, domain) of ``name``: ``dataset.domain``, or a bare domain that
        only one dataset has."""
        if not self.joint:
            self.specs[0].index(name)
            return 0, name
        head, dot, tail = name.partition(".")
        if dot and head in self.datasets:
            i = self.datasets.index(head)
            self.specs[i].index(tail)
            return i, tail
        owners = [i for i, s in enumerate(self.specs) if name in s.names]
        if len(owners) == 1:
            return owners[0], name
        if len(owners) > 1:
            both = ", ".join(self.qualified(i, name) for i in owners)
            raise StarGANError(f"domain {name!r} is in several datasets; write one of {both}")
        close = difflib.get_close_matches(name, self.domain_names(), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise StarGANError(
            f"unknown domain {name!r}{hint}; valid: {', '.join(self.domain_names())}"
        )

    def resolve(self, assignments: dict[str, float]) -> tuple[int, dict[str, float]]:
        """One dataset's index and its assignments; a target may not mix datasets."""
        if not assignments:
            raise StarGANError(f"empty target; expected e.g. {self.domain_names()[0]}=1")
        found = {name: self.find(name) for name in assignments}
        parts = sorted({i for i, _ in found.values()})
        if len(parts) > 1:
            names = ", ".join(self.datasets[i] for i in parts)
            raise StarGANError(
                f"a target uses one dataset's labels (paper 3.2); this one mixes {names}"
            )
        own = {found[k][1]: v for k, v in assignments.items()}
        if len(own) < len(assignments):
            raise StarGANError(f"a domain is named twice in the target {sorted(assignments)}")
        self.specs[parts[0]].check_assignments(own)
        return parts[0], own

    def estimate(self, logits: torch.Tensor, i: int) -> torch.Tensor:
        """Dataset ``i``'s labels as D_cls sees them in its slice of ``logits``."""
        return self.specs[i].from_logits(logits[:, self.part(i)])

    def known_or_estimated(
        self, c: torch.Tensor, logits: Callable[[], torch.Tensor], i: int
    ) -> torch.Tensor:
        """Dataset ``i``'s labels of full labels ``c``: each row's own where its mask marks
        dataset ``i`` (always, for one dataset), else D_cls's estimate from ``logits()``
        (called only when some row needs it)."""
        if c.dim() != 2 or c.size(1) != self.dim:
            raise StarGANError(f"labels must be [N, {self.dim}], got {list(c.shape)}")
        own = c[:, self.part(i)]
        if not self.joint:
            return own
        known = c[:, self.cls_dim + i : self.cls_dim + i + 1] > 0
        return own if bool(known.all()) else torch.where(known, own, self.estimate(logits(), i))

    def single_changes(self, labels: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        """Every domain of every dataset as one target, from per-dataset labels [N, d_i]
        (each input's own labels where known, D_cls's estimate elsewhere)."""
        return [(name, c_trg) for name, _, c_trg in self.changes_with_sources(labels)]

    def changes_with_sources(
        self, labels: list[torch.Tensor], how: str = "single"
    ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """Each dataset's changes (``LabelSpec.changes``: one domain at a time, or the
        multi-attribute combinations) with their source labels: [(name, c_org, c_trg)],
        both encoded (a difference-conditioned G needs the source); a combination is named
        ``Black_Hair+Male``."""
        return [
            (
                "+".join(self.qualified(i, n) for n in names),
                self.encode(i, labels[i]),
                self.encode(i, spec.change(labels[i], names)),
            )
            for i, spec in enumerate(self.specs)
            for names in spec.changes(how)
        ]

    def to_dict(self) -> list[dict]:
        return [
            {"name": n, "labels": s.to_dict()}
            for n, s in zip(self.datasets, self.specs, strict=True)
        ]

    @classmethod
    def from_dict(cls, entries: list[dict]) -> LabelLayout:
        if not isinstance(entries, list) or not entries:
            raise StarGANError("malformed datasets entry: expected a non-empty list")
        try:
            return cls(
                tuple(str(e["name"]) for e in entries),
                tuple(LabelSpec.from_dict(e["labels"]) for e in entries),
            )
        except (TypeError, KeyError) as err:
            raise StarGANError(f"malformed datasets entry ({err})") from err
