"""Image decoding shared by the image loaders (Pillow). Nothing here imports TensorFlow."""
from boml.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "pil_image"]

#: File name endings read as images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def pil_image():
    """Pillow's ``Image`` module.

    Raises:
        DataError: Pillow is not installed (it is a dependency of boml).
    """
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - pillow is a dependency
        raise DataError("Reading image datasets needs Pillow, which is not installed. Run `pip install pillow`.") from e
    return Image
