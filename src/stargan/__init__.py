"""stargan: multi-domain image-to-image translation (StarGAN v1 and v2)."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("stargan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__", "load"]


def load(path, device: str = "cpu"):
    """Load an exported model folder: a v1 folder as a ``Translator``, a v2 folder
    (``stargan-v2``) as a ``StyleModel``."""
    from stargan.evaluate.runner import load_model

    return load_model(Path(path), device)
