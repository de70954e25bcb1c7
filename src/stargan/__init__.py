"""stargan: multi-domain image-to-image translation (StarGAN v1)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stargan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__", "load"]


def load(path, device: str = "cpu"):
    """Load an exported model folder (``config.json`` + ``model.safetensors``) as a Translator."""
    from stargan.translate import Translator

    return Translator.from_pretrained(path, device=device)
