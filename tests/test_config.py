"""Config dataclasses, ``--set`` overrides, validation and presets."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest

from stargan.config import (
    Config,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    load_config,
    valid_keys,
    validate,
)
from stargan.errors import StarGANError
from stargan.presets import PRESETS, get_preset


# ---------------------------------------------------------------- overrides
def test_overrides_parse_each_field_type() -> None:
    cfg = apply_overrides(
        Config(),
        [
            "model.image_size=64",  # int
            "loss.lambda_rec=2.5",  # float
            "train.tensorboard=false",  # bool
            "data.flip=1",  # bool from 1
            "data.dataset=celeba",  # str
            "data.attrs=Black_Hair, Male ,Young",  # tuple, stripped
            "name = my-run",  # top-level str, spaces around '=' ignored
        ],
    )
    assert cfg.model.image_size == 64 and type(cfg.model.image_size) is int
    assert cfg.loss.lambda_rec == 2.5 and type(cfg.loss.lambda_rec) is float
    assert cfg.train.tensorboard is False
    assert cfg.data.flip is True
    assert cfg.data.dataset == "celeba"
    assert cfg.data.attrs == ("Black_Hair", "Male", "Young")
    assert cfg.name == "my-run"
    # Everything not mentioned keeps its default; the input config is not mutated.
    assert cfg.model.g_conv_dim == Config().model.g_conv_dim
    assert Config().model.image_size == 128


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("yes", True), ("1", True)]
    + [("false", False), ("no", False), ("0", False)],
)
def test_override_bool_spellings(raw: str, expected: bool) -> None:
    cfg = apply_overrides(Config(), [f"train.tensorboard={raw}"])
    assert cfg.train.tensorboard is expected


@pytest.mark.parametrize(
    ("preset", "arch", "names"), [("demo", "v2", "faces-v2"), ("faces-v2", "v1", "demo")]
)
def test_switching_the_family_is_refused(preset: str, arch: str, names: str) -> None:
    with pytest.raises(StarGANError, match=f"model.arch={arch} on the .* start from .*{names}"):
        apply_overrides(get_preset(preset), [f"model.arch={arch}"])


def test_later_override_wins() -> None:
    cfg = apply_overrides(Config(), ["train.batch_size=8", "train.batch_size=2"])
    assert cfg.train.batch_size == 2


def test_unknown_key_names_close_match_and_valid_keys() -> None:
    with pytest.raises(StarGANError) as info:
        apply_overrides(Config(), ["model.imag_size=64"])
    msg = str(info.value)
    assert "'model.imag_size'" in msg
    assert "did you mean model.image_size" in msg
    assert "valid keys:" in msg
    for key in ("train.num_iters_decay", "loss.lambda_gp", "data.attrs"):
        assert key in msg


def test_unknown_section_and_too_deep_key() -> None:
    with pytest.raises(StarGANError, match="unknown config key 'modle.c_dim'"):
        apply_overrides(Config(), ["modle.c_dim=3"])
    with pytest.raises(StarGANError, match="unknown config key 'model.c_dim.x'"):
        apply_overrides(Config(), ["model.c_dim.x=3"])


@pytest.mark.parametrize(
    "assignment",
    ["model.image_size=abc", "model.image_size=1.5", "loss.lambda_cls=x", "train.tensorboard=2"],
)
def test_ill_typed_value(assignment: str) -> None:
    key = assignment.partition("=")[0]
    with pytest.raises(StarGANError, match=f"config key '{key}' expects"):
        apply_overrides(Config(), [assignment])


def test_setting_a_section_is_an_error() -> None:
    with pytest.raises(StarGANError, match="'model' is a section"):
        apply_overrides(Config(), ["model=1"])


def test_assignment_without_equals_is_an_error() -> None:
    with pytest.raises(StarGANError, match="key=value"):
        apply_overrides(Config(), ["model.image_size"])


def test_valid_keys_are_flat_dotted_leaves() -> None:
    keys = valid_keys()
    assert "name" in keys and "model.image_size" in keys and "optim.n_critic" in keys
    assert "model" not in keys  # sections are not keys
    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------- serialisation
def test_json_round_trip_equals() -> None:
    cfg = apply_overrides(
        get_preset("tiny"), ["data.attrs=Black_Hair,Male", "loss.lambda_gp=3.5", "model.c_dim=2"]
    )
    back = Config.from_dict(json.loads(cfg.to_json()))
    assert back == cfg
    assert isinstance(back.data.attrs, tuple)  # JSON lists become tuples again


def test_load_config_file_and_errors(tmp_path) -> None:
    cfg = get_preset("demo")
    good = tmp_path / "config.json"
    good.write_text(cfg.to_json())
    assert load_config(good) == cfg

    d = cfg.to_dict()
    d["model"]["no_such_field"] = 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(StarGANError, match="no_such_field"):
        load_config(bad)

    with pytest.raises(StarGANError, match="cannot read config"):
        load_config(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(StarGANError, match="cannot read config"):
        load_config(broken)


# ---------------------------------------------------------------- validation
def _with(cfg: Config, **sections) -> Config:
    return replace(cfg, **{k: replace(getattr(cfg, k), **v) for k, v in sections.items()})


def test_defaults_validate() -> None:
    assert validate(Config()) == Config()


@pytest.mark.parametrize(
    ("image_size", "d_repeat_num"),
    [(100, 6), (32, 6), (48, 5), (8, 4)],  # not a multiple of / smaller than 2**d_repeat_num
)
def test_validate_rejects_image_size_for_d_repeat_num(image_size: int, d_repeat_num: int) -> None:
    cfg = _with(Config(), model={"image_size": image_size, "d_repeat_num": d_repeat_num})
    with pytest.raises(StarGANError, match=f"2\\*\\*d_repeat_num = {2**d_repeat_num}"):
        validate(cfg)


def test_validate_accepts_matching_image_size() -> None:
    cfg = _with(Config(), model={"image_size": 32, "d_repeat_num": 5})
    assert validate(cfg).model.image_size == 32


def test_validate_rejects_size_not_multiple_of_4() -> None:
    cfg = _with(Config(), model={"image_size": 6, "d_repeat_num": 1})
    with pytest.raises(StarGANError, match="multiple of 4"):
        validate(cfg)


def test_validate_rejects_decay_longer_than_run() -> None:
    cfg = _with(Config(), train={"num_iters": 100, "num_iters_decay": 101})
    with pytest.raises(StarGANError, match="num_iters_decay"):
        validate(cfg)
    cfg = _with(Config(), train={"num_iters": 100, "num_iters_decay": -1})
    with pytest.raises(StarGANError, match="num_iters_decay"):
        validate(cfg)
    # the whole run decaying is allowed
    assert validate(_with(Config(), train={"num_iters": 100, "num_iters_decay": 100}))


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("train", "batch_size"),
        ("train", "num_iters"),
        ("model", "g_conv_dim"),
        ("optim", "n_critic"),
        ("train", "ckpt_every"),
    ],
)
def test_validate_rejects_zero_counts(section: str, key: str) -> None:
    cfg = _with(Config(), **{section: {key: 0}})
    with pytest.raises(StarGANError, match=f"{section}.{key} must be > 0"):
        validate(cfg)


def test_validate_rejects_bad_arch_device_and_negative_c_dim() -> None:
    with pytest.raises(StarGANError, match="model.arch"):
        validate(_with(Config(), model={"arch": "v3"}))
    with pytest.raises(StarGANError, match="train.device"):
        validate(_with(Config(), train={"device": "tpu"}))
    with pytest.raises(StarGANError, match="c_dim"):
        validate(_with(Config(), model={"c_dim": -1}))
    import torch

    if torch.cuda.is_available():
        assert validate(_with(Config(), train={"device": "cuda:0"})).train.device == "cuda:0"
    else:  # asking for a GPU on a machine without one fails at once, not mid-run
        with pytest.raises(StarGANError, match="CUDA is not available"):
            validate(_with(Config(), train={"device": "cuda:0"}))


# ---------------------------------------------------------------- presets
def test_paper_defaults() -> None:
    # Paper section 4 / official solver defaults.
    cfg = Config()
    assert (cfg.model.image_size, cfg.model.g_conv_dim, cfg.model.g_repeat_num) == (128, 64, 6)
    assert (cfg.loss.lambda_cls, cfg.loss.lambda_rec, cfg.loss.lambda_gp) == (1.0, 10.0, 10.0)
    assert (cfg.optim.g_lr, cfg.optim.beta1, cfg.optim.beta2, cfg.optim.n_critic) == (
        1e-4,
        0.5,
        0.999,
        5,
    )
    assert cfg.train == TrainConfig()
    assert (cfg.train.batch_size, cfg.train.num_iters, cfg.train.num_iters_decay) == (
        16,
        200000,
        100000,
    )
    assert get_preset("celeba-v1").model == ModelConfig()


def test_get_preset_unknown_name() -> None:
    with pytest.raises(StarGANError, match="valid: tiny"):
        get_preset("tinyy")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_name_matches_key(name: str) -> None:
    assert get_preset(name).name == name
    assert get_preset(name) == get_preset(name)  # a fresh, equal Config each time


@pytest.mark.skipif(
    importlib.util.find_spec("stargan.data.faces") is None,
    reason="stargan.data.faces (built-in face datasets) is not in this tree yet",
)
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_after_filling_c_dim(name: str) -> None:
    from stargan.train.run import prepare_config

    # celebahq-v2's w_hpf 1 needs the FAN weights' path (only checked to be given here)
    fan = ["model.fan_path=wing.ckpt"] if name == "celebahq-v2" else []
    cfg = prepare_config(get_preset(name), fan)
    assert cfg.model.c_dim > 0
    # 8 expressions; joint: 5 attributes + 8 (RaFD, built-in) or 7 (CK+) expressions and a
    # mask entry per dataset; else the paper's 5 attributes
    expected = {
        "faces-expr-v1": (8, 0),
        "celeba-rafd-v1": (13, 2),
        "faces-joint-v1": (13, 2),
        "joint-celeba-ckplus-v1": (12, 2),
        "ckplus-v1": (7, 0),
        "ckplus-v2": (7, 0),
        "afhq-v2": (3, 0),
        "celebahq-v2": (2, 0),
        "faces-v2": (2, 0),
        "tiny-v2": (2, 0),
    }.get(name, (5, 0))
    assert (cfg.model.c_dim, cfg.model.mask_dim) == expected
    assert validate(cfg) == cfg


def test_joint_paper_preset_counts_updates_as_the_official_solver() -> None:
    """Official train_multi: 200k rounds, each a CelebA and a RaFD batch (a D update
    each), G updated for both datasets in every 5th round, the rate decayed over the
    last 100k rounds. Ours counts one iteration per dataset batch."""
    from stargan.train.base import dataset_at
    from stargan.train.run import joint_counting

    cfg = get_preset("celeba-rafd-v1")
    schedule, t = (1, 1), cfg.train
    rounds, decay_rounds = 200_000, 100_000
    assert t.num_iters == 2 * rounds and t.num_iters_decay == 2 * decay_rounds
    # G steps where the trainer takes them: every iteration of each n_critic-th cycle
    n_critic = cfg.optim.n_critic
    per_cycle = [(dataset_at(schedule, s)[2] + 1) % n_critic == 0 for s in range(10 * n_critic)]
    assert sum(per_cycle) * (t.num_iters // (10 * n_critic)) == 2 * rounds // n_critic
    assert "400000 iterations = 200000 rounds" in joint_counting(cfg)


# ---------------------------------------------------------------- resize filter
# The paper presets on photos resize as the official loaders (bilinear); the built-in
# faces render at the model's size, and the CPU presets keep the bicubic default.
OFFICIAL_RESIZE_PRESETS = {"celeba-v1", "celeba-rafd-v1", "celebahq-v2", "afhq-v2"}


def test_resize_filter_default_override_and_refusal() -> None:
    assert Config().data.resize_filter == "bicubic"
    assert (
        validate(apply_overrides(Config(), ["data.resize_filter=bilinear"])).data.resize_filter
        == "bilinear"
    )
    with pytest.raises(
        StarGANError,
        match=r"data.resize_filter must be one of bicubic, bilinear \(got 'lanczos'\)",
    ):
        validate(apply_overrides(Config(), ["data.resize_filter=lanczos"]))
    joint = apply_overrides(get_preset("celeba-rafd-v1"), ["data.rafd.resize_filter=cubic"])
    with pytest.raises(StarGANError, match="data.rafd.resize_filter must be one of"):
        validate(joint)


def test_config_file_with_a_bad_resize_filter_is_refused(tmp_path) -> None:
    path = tmp_path / "config.json"
    data = Config().to_dict()
    data["data"]["resize_filter"] = "BILINEAR"
    path.write_text(json.dumps(data))
    with pytest.raises(StarGANError, match="got 'BILINEAR'"):
        load_config(path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_paper_presets_resize_as_the_official_loaders(name: str) -> None:
    filters = {d.resize_filter for d in get_preset(name).datasets}
    assert filters == {"bilinear" if name in OFFICIAL_RESIZE_PRESETS else "bicubic"}
