"""Each dataset's images are checked once: the result is remembered by the data's checksum.

A loader calls :func:`validate_once` with a digest of its data (the sha256 of an archive, or of every
file of a folder) and a function that decodes every image. The function runs only if this digest
was never validated, in this process or before: a marker file ``<kind>-<digest>`` in the cache
folder (``$BOML_CACHE_DIR``, else ``~/.cache/boml``) remembers it across processes. Any change to a
file changes the digest, so the check runs again. Nothing here imports TensorFlow.
"""
import hashlib
import os

__all__ = ["CACHE_FOLDER_ENV", "cache_folder", "validate_once"]

#: Environment variable naming the cache folder.
CACHE_FOLDER_ENV = "BOML_CACHE_DIR"

_VALIDATED = set()


def cache_folder():
    """The cache folder: ``$BOML_CACHE_DIR`` if set, else ``~/.cache/boml``."""
    return os.environ.get(CACHE_FOLDER_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "boml")


def _marker(kind, digest):
    short = hashlib.sha256(digest.encode("utf-8")).hexdigest()  # digests of several files stay one name
    return os.path.join(cache_folder(), "validated", f"{kind}-{short}")


def validate_once(kind, digest, check):
    """Runs ``check()`` unless the data of ``digest`` was validated already.

    Args:
        kind: the dataset (part of the marker's name).
        digest: a string that changes whenever the data changes.
        check: decodes every image; raises ``DataError`` naming the first bad file.

    Returns:
        True if ``check`` ran, False if the cached result was used.
    """
    marker = _marker(kind, digest)
    if marker in _VALIDATED or os.path.exists(marker):
        _VALIDATED.add(marker)
        return False
    check()
    _VALIDATED.add(marker)
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w") as f:
            f.write(digest + "\n")
    except OSError:  # a read-only home: the check runs again in the next process, nothing is lost
        pass
    return True
