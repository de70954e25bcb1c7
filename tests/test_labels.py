"""LabelSpec: validation, training targets, single-domain changes, target parsing."""

from __future__ import annotations

import pytest
import torch

from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")
CELEBA = LabelSpec((*HAIR, "Male", "Young"), "multi", (HAIR,))
EXPR = LabelSpec(("angry", "happy", "sad"), "categorical")


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------- validation
def test_spec_basics() -> None:
    assert CELEBA.dim == 5
    assert CELEBA.index("Male") == 3
    assert CELEBA.group_of("Blond_Hair") == HAIR
    assert CELEBA.group_of("Young") is None
    assert LabelSpec.from_dict(CELEBA.to_dict()) == CELEBA
    assert LabelSpec.from_dict(EXPR.to_dict()) == EXPR


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ()}, "at least one domain"),
        ({"names": ("a", "b", "a")}, "duplicate domain names"),
        ({"names": ("a", "b"), "kind": "ordinal"}, "must be 'multi' or 'categorical'"),
        ({"names": ("a", "b"), "exclusive_groups": (("a", "c"),)}, "unknown domain 'c'"),
    ],
)
def test_spec_validation_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(StarGANError, match=message):
        LabelSpec(**kwargs)


def test_index_unknown_name_suggests_close_match() -> None:
    with pytest.raises(StarGANError) as info:
        CELEBA.index("Blonde_Hair")
    msg = str(info.value)
    assert "did you mean Blond_Hair" in msg
    assert "valid: Black_Hair, Blond_Hair, Brown_Hair, Male, Young" in msg


# ---------------------------------------------------------------- random targets
def _random_labels(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, generator=g) > 0.5).float()


def test_random_targets_without_groups_is_a_row_permutation() -> None:
    spec = LabelSpec(("a", "b", "c"))
    c_org = torch.eye(8, 3) + torch.arange(8.0)[:, None] * 10  # all rows distinct
    c_trg = spec.random_targets(c_org, torch.Generator().manual_seed(0))
    rows_org = sorted(map(tuple, c_org.tolist()))
    rows_trg = sorted(map(tuple, c_trg.tolist()))
    assert rows_trg == rows_org
    assert not torch.equal(c_trg, c_org)  # seed 0 does move rows
    assert torch.equal(c_org[:, 0], torch.eye(8, 3)[:, 0] + torch.arange(8.0) * 10)  # untouched


def test_random_targets_exclusive_groups_keep_exactly_one() -> None:
    hair = _t(
        [
            [1, 1, 0],  # two hair colours
            [1, 1, 1],  # three
            [0, 0, 0],  # none: stays none
            [0, 1, 0],  # one: unchanged
            [0, 0, 1],
            [0, 0, 0],
        ]
    )
    # Male = 1 everywhere; Young holds the row id (any float works: only group columns
    # are thresholded) so each target row can be traced back to its source row.
    c_org = torch.cat([hair, torch.ones(6, 1), torch.arange(6.0)[:, None]], dim=1)
    moved = False
    for seed in range(20):
        c_trg = CELEBA.random_targets(c_org, torch.Generator().manual_seed(seed))
        src = c_trg[:, 4].long()
        assert sorted(src.tolist()) == list(range(6))  # a permutation of the rows
        moved |= not torch.equal(src, torch.arange(6))
        assert torch.equal(c_trg[:, 3], torch.ones(6))
        for row, s in enumerate(src.tolist()):
            h_src, h_trg = hair[s], c_trg[row, :3]
            if h_src.sum() == 0:
                assert torch.equal(h_trg, torch.zeros(3))  # "none of these" stays zero
            else:
                assert h_trg.sum() == 1  # exactly one colour ...
                assert h_src[h_trg.argmax()] == 1  # ... one the source row had
    assert moved


def test_random_targets_keep_one_of_the_active_members() -> None:
    # One row with Black+Brown: the kept colour must be one of those two, never Blond;
    # over many seeds both are chosen (the choice is random, not always the first).
    c_org = _t([[1, 0, 1, 0, 1]])
    kept = set()
    for seed in range(40):
        c_trg = CELEBA.random_targets(c_org, torch.Generator().manual_seed(seed))
        assert c_trg[0, 1] == 0
        assert c_trg[0, :3].sum() == 1
        assert torch.equal(c_trg[0, 3:], c_org[0, 3:])
        kept.add(int(c_trg[0, :3].argmax()))
    assert kept == {0, 2}


def test_random_targets_deterministic_under_seeded_generator() -> None:
    c_org = torch.cat([_random_labels(16, 1), _random_labels(16, 2)[:, :2]], dim=1)
    a = CELEBA.random_targets(c_org, torch.Generator().manual_seed(7))
    b = CELEBA.random_targets(c_org, torch.Generator().manual_seed(7))
    c = CELEBA.random_targets(c_org, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def _matches_a_single_change(spec: LabelSpec, c_org: torch.Tensor, c_trg: torch.Tensor) -> bool:
    singles = [c for _, c in spec.single_changes(c_org)]
    return all(
        any(torch.equal(c_trg[i], c[i]) and not torch.equal(c[i], c_org[i]) for c in singles)
        for i in range(c_org.size(0))
    )


def test_single_targets_change_one_domain_and_reach_every_domain() -> None:
    c_org = _t([[1, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]])
    seen = set()
    for seed in range(60):
        c_trg = CELEBA.single_targets(c_org, torch.Generator().manual_seed(seed))
        assert _matches_a_single_change(CELEBA, c_org, c_trg)
        seen |= {(i, tuple(c_trg[i].tolist())) for i in range(3)}
    # row 0 (black hair): blond, brown, sex, age; row 1 (unlabelled hair): 3 colours + 2
    assert sum(1 for i, _ in seen if i == 0) == 4
    assert sum(1 for i, _ in seen if i == 1) == 5


def test_single_targets_categorical_pick_another_class() -> None:
    c_org = _t([[1, 0, 0], [0, 0, 1]])
    for seed in range(20):
        c_trg = EXPR.single_targets(c_org, torch.Generator().manual_seed(seed))
        assert torch.equal(c_trg.sum(1), torch.ones(2))
        assert (c_trg.argmax(1) != c_org.argmax(1)).all()


def _changed_domain_counts(c_org: torch.Tensor, c_trg: torch.Tensor) -> torch.Tensor:
    """How often each column of CELEBA was the one a single-change target altered."""
    return (c_trg != c_org).float().sum(0)


def test_single_targets_weights_shift_the_draw_towards_a_domain() -> None:
    c_org = _t([[1, 0, 0, 1, 1]]).repeat(4000, 1)  # black-haired young men: 4 changes each
    gen = torch.Generator().manual_seed(0)
    plain = _changed_domain_counts(c_org, CELEBA.single_targets(c_org, gen))
    gen = torch.Generator().manual_seed(0)
    weighted = CELEBA.single_targets(c_org, gen, {"Young": 3.0})
    assert _matches_a_single_change(CELEBA, c_org, weighted)
    counts = _changed_domain_counts(c_org, weighted)
    # uniform: each of blond / brown / sex / age 1/4 of rows; Young x3: age 3/6, others 1/6
    assert abs(plain[4].item() / 4000 - 0.25) < 0.03
    assert abs(counts[4].item() / 4000 - 0.5) < 0.03
    assert abs(counts[3].item() / 4000 - 1 / 6) < 0.03
    # a weight never makes a change a row cannot take (black hair is not a change here)
    gen = torch.Generator().manual_seed(1)
    only_black = CELEBA.single_targets(c_org, gen, {"Black_Hair": 100.0})
    assert (only_black != c_org).any(1).all()
    assert _matches_a_single_change(CELEBA, c_org, only_black)
    with pytest.raises(StarGANError, match="unknown domain.*valid: Black_Hair"):
        CELEBA.single_targets(c_org, gen, {"Old": 2.0})


def test_training_targets_modes() -> None:
    c_org = torch.cat([_random_labels(64, 1), _random_labels(64, 2)[:, :2]], dim=1)
    permuted = CELEBA.training_targets(c_org, torch.Generator().manual_seed(3), "permute")
    assert torch.equal(permuted, CELEBA.random_targets(c_org, torch.Generator().manual_seed(3)))
    mixed = CELEBA.training_targets(c_org, torch.Generator().manual_seed(3), "mixed")
    changed = (mixed != c_org).sum(1)
    assert (changed >= 2).any()  # some rows permuted (several domains at once)
    single = CELEBA.training_targets(c_org, torch.Generator().manual_seed(3), "single")
    assert _matches_a_single_change(CELEBA, c_org, single)
    with pytest.raises(StarGANError, match="target sampling"):
        CELEBA.training_targets(c_org, torch.Generator(), "all")


# ---------------------------------------------------------------- set / change
def test_set_domain_group_member_clears_its_group_only() -> None:
    c_org = _t([[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    c_trg = CELEBA.set_domain(c_org, "Blond_Hair")
    assert torch.equal(c_trg, _t([[0, 1, 0, 1, 0], [0, 1, 0, 0, 1]]))
    assert torch.equal(c_org, _t([[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]]))  # input not mutated


def test_set_domain_zero_leaves_rest_of_group() -> None:
    c_org = _t([[1, 0, 0, 1, 1]])
    assert torch.equal(CELEBA.set_domain(c_org, "Black_Hair", 0.0), _t([[0, 0, 0, 1, 1]]))
    assert torch.equal(CELEBA.set_domain(c_org, "Male", 0.0), _t([[1, 0, 0, 0, 1]]))


def test_set_domain_categorical_is_one_hot() -> None:
    c_org = _t([[1, 0, 0], [0, 0, 1]])
    assert torch.equal(EXPR.set_domain(c_org, "happy"), _t([[0, 1, 0], [0, 1, 0]]))


def test_single_changes_multi() -> None:
    c_org = _t([[1, 0, 0, 1, 0]])
    changes = dict(CELEBA.single_changes(c_org))
    assert list(changes) == list(CELEBA.names)
    assert torch.equal(changes["Black_Hair"], _t([[1, 0, 0, 1, 0]]))  # already set: stays
    assert torch.equal(changes["Blond_Hair"], _t([[0, 1, 0, 1, 0]]))
    assert torch.equal(changes["Brown_Hair"], _t([[0, 0, 1, 1, 0]]))
    assert torch.equal(changes["Male"], _t([[1, 0, 0, 0, 0]]))  # flipped 1 -> 0
    assert torch.equal(changes["Young"], _t([[1, 0, 0, 1, 1]]))  # flipped 0 -> 1


def test_multi_combinations_are_the_papers_figure_4() -> None:
    """Pairs of factors (a hair colour, sex, age) and all three, each hair colour in turn:
    hair+sex, hair+age, sex+age, hair+sex+age."""
    assert CELEBA.factors() == [HAIR, ("Male",), ("Young",)]
    combos = CELEBA.multi_combinations()
    assert combos[:3] == [("Black_Hair", "Male"), ("Blond_Hair", "Male"), ("Brown_Hair", "Male")]
    assert ("Male", "Young") in combos and ("Blond_Hair", "Male", "Young") in combos
    assert len(combos) == 3 + 3 + 1 + 3
    assert CELEBA.changes("single") == [(n,) for n in CELEBA.names]
    assert CELEBA.changes("multi") == combos
    assert EXPR.multi_combinations() == []
    assert LabelSpec(HAIR, "multi", (HAIR,)).multi_combinations() == []  # one factor only
    two = LabelSpec(("Male", "Young"))
    assert two.multi_combinations() == [("Male", "Young")]  # all of them = the pair
    with pytest.raises(StarGANError, match="single' or 'multi"):
        CELEBA.changes("all")


def test_change_sets_group_members_and_flips_free_attributes() -> None:
    c_org = torch.tensor([[1.0, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    c_trg = CELEBA.change(c_org, ("Black_Hair", "Male", "Young"))
    assert c_trg.tolist() == [[1, 0, 0, 0, 0], [1, 0, 0, 1, 1]]
    # the first row already has black hair: not every named domain changes there
    assert CELEBA.changed_rows(c_org, ("Black_Hair", "Male")).tolist() == [False, True]
    assert CELEBA.changed_rows(c_org, ("Male", "Young")).tolist() == [True, True]
    for name, c_single in CELEBA.single_changes(c_org):
        assert torch.equal(c_single, CELEBA.change(c_org, (name,)))


def test_single_changes_categorical() -> None:
    c_org = _t([[0, 0, 1]])
    changes = EXPR.single_changes(c_org)
    assert [n for n, _ in changes] == ["angry", "happy", "sad"]
    for i, (_, c) in enumerate(changes):
        assert torch.equal(c, torch.eye(3)[i : i + 1])


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Blond_Hair=1", {"Blond_Hair": 1.0}),
        ("Blond_Hair", {"Blond_Hair": 1.0}),  # bare name means 1
        ("Male=0", {"Male": 0.0}),
        ("Male=-1", {"Male": 0.0}),  # CelebA's own -1
        ("Male=true, Young=FALSE", {"Male": 1.0, "Young": 0.0}),
        (" Young = 1 ,, ", {"Young": 1.0}),
    ],
)
def test_parse_assignments(text: str, expected: dict[str, float]) -> None:
    assert CELEBA.parse_assignments(text) == expected


def test_parse_assignments_unknown_name_suggests() -> None:
    with pytest.raises(StarGANError, match="unknown domain 'Mael'.*did you mean Male"):
        CELEBA.parse_assignments("Mael=1")


@pytest.mark.parametrize("text", ["Male=2", "Male=maybe", "Male=0.5"])
def test_parse_assignments_bad_value(text: str) -> None:
    with pytest.raises(StarGANError, match="must be 0 or 1"):
        CELEBA.parse_assignments(text)


def test_parse_assignments_empty() -> None:
    with pytest.raises(StarGANError, match="empty target"):
        CELEBA.parse_assignments(" , ")


@pytest.mark.parametrize(
    ("spec", "text", "message"),
    [
        (CELEBA, "Blond_Hair=1,Black_Hair=1", "Blond_Hair and Black_Hair cannot both be 1"),
        (CELEBA, "Male=1,Young,Male=0", "'Male' is given twice"),
        (EXPR, "happy=1,sad=1", "happy and sad cannot both be 1"),
    ],
)
def test_parse_assignments_refuses_contradictions(spec: LabelSpec, text: str, message: str) -> None:
    with pytest.raises(StarGANError, match=message):
        spec.parse_assignments(text)


def test_parse_assignments_allows_clearing_a_group() -> None:
    assert CELEBA.parse_assignments("Blond_Hair=0,Black_Hair=0,Brown_Hair=1") == {
        "Blond_Hair": 0.0,
        "Black_Hair": 0.0,
        "Brown_Hair": 1.0,
    }


def test_apply_assignments() -> None:
    c_org = _t([[1, 0, 0, 1, 0]])
    c_trg = CELEBA.apply(c_org, CELEBA.parse_assignments("Brown_Hair=1,Male=0"))
    assert torch.equal(c_trg, _t([[0, 0, 1, 0, 0]]))
    with pytest.raises(StarGANError, match="can only be set to 1"):
        EXPR.apply(_t([[1, 0, 0]]), {"happy": 0.0})
