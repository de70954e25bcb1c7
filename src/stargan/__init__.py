"""stargan: multi-domain image-to-image translation (StarGAN v1 and v2)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stargan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__", "load"]


def load(path, device: str = "cpu"):
    """Load an exported model folder, or a bundled model by name (``stargan.load("celeba")``;
    an existing path of that name wins): a v1 folder as a ``Translator``, a v2 folder
    (``stargan-v2``) as a ``StyleModel``."""
    from stargan.bundled import resolve_model
    from stargan.loading import load_model

    return load_model(resolve_model(path), device)
