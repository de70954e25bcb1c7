"""Bundled models: model folders shipped inside the package, named like a folder.

Each lives in ``src/stargan/bundled/<name>/`` with the layout ``stargan export`` writes
(``config.json`` + ``model.safetensors`` [+ ``discriminator.safetensors``]) and a model
card ``card.md`` whose first line is its one-line summary. ``resolve_model`` turns what a
user typed (``stargan.load("celeba")``, ``stargan translate celeba ...``) into a folder:
an existing path wins, then a bundled name.

The models sit beside this file (a package rather than a ``bundled.py`` beside a
``bundled/`` folder, which Python would resolve to the module only while the folder has
no ``__init__.py``). Every function takes ``root`` so tests can point it at a temporary
folder; None is the package's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stargan.errors import StarGANError

__all__ = ["DEFAULT_MODEL", "BundledModel", "bundled_root", "list_bundled", "resolve_model"]

DEFAULT_MODEL = "celeba"  # what `stargan serve` with no model serves, when installed
CARD = "card.md"


@dataclass(frozen=True)
class BundledModel:
    name: str
    path: Path  # the model folder
    image_size: int
    domains: tuple[str, ...]  # joint models: dataset.domain
    summary: str  # card.md's first line, else a line made from config.json

    @property
    def card(self) -> Path:
        return self.path / CARD


def bundled_root() -> Path:
    """The package's folder of bundled models."""
    return Path(__file__).resolve().parent


def list_bundled(root: Path | None = None) -> list[BundledModel]:
    """The bundled models under ``root`` (default: the package's), sorted by name: every
    subfolder with a config.json. A malformed config.json is a StarGANError naming it."""
    root = bundled_root() if root is None else Path(root)
    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if (p / "config.json").is_file())
    return [_describe(p) for p in folders]


def resolve_model(arg: str | Path, root: Path | None = None) -> Path:
    """The model folder ``arg`` names: an existing path as is (its own errors, such as a
    training run named as a model, are the loader's to report), else the bundled model
    of that name, else a StarGANError listing the bundled names."""
    path = Path(arg)
    if path.exists():
        return path
    # names are compared, never joined onto root: "../x" cannot reach outside it
    for model in list_bundled(root):
        if model.name == str(arg):
            return model.path
    raise StarGANError(f"{arg} does not exist, and is not a bundled model ({_listing(root)})")


def find_bundled(name: str, root: Path | None = None) -> BundledModel:
    """The bundled model called ``name``; a StarGANError listing the names otherwise."""
    for model in list_bundled(root):
        if model.name == name:
            return model
    raise StarGANError(f"no bundled model is named {name!r} ({_listing(root)})")


def _listing(root: Path | None) -> str:
    names = [m.name for m in list_bundled(root)]
    return f"bundled models: {', '.join(names)}" if names else "no bundled models are installed"


def _describe(path: Path) -> BundledModel:
    """Name, size, domains and summary from the folder's files, without building a net."""
    where = path / "config.json"
    try:
        config = json.loads(where.read_text())
        size = int(config["model"]["image_size"])
        if "datasets" in config:  # qualified as LabelLayout.domain_names (no torch import)
            sets = config["datasets"]
            domains = tuple(
                f"{d['name']}.{n}" if len(sets) > 1 else str(n)
                for d in sets
                for n in d["labels"]["names"]
            )
        else:
            domains = tuple(str(n) for n in config["labels"]["names"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise StarGANError(f"bundled model {where} is unreadable: {err}") from err
    return BundledModel(path.name, path, size, domains, _summary(path, config))


def first_line(path: Path) -> str:
    """The first non-empty line of a Markdown file, heading marks off ("" if unreadable)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    return next((ln.strip().lstrip("#").strip() for ln in lines if ln.strip()), "")


def _summary(path: Path, config: dict) -> str:
    first = first_line(path / CARD)
    if first:
        return first
    data = config.get("dataset") or "unknown data"
    return f"{config.get('kind', 'model')} trained on {data}"
