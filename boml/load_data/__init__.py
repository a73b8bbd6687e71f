"""Data: episodes (numpy) and the experiment placeholders (TensorFlow, imported on first use).

``BOMLExperiment`` is loaded lazily so that the numpy-only data layer (and the ``data`` command of the CLI)
can be imported without TensorFlow.
"""
from boml.load_data.datasets import *  # noqa: F401,F403
from boml.load_data.datasets import __all__ as _datasets_all

__all__ = ["BOMLExperiment"] + list(_datasets_all)  # noqa: F405 (BOMLExperiment: see __getattr__)


def __getattr__(name):
    if name == "BOMLExperiment":
        from boml.load_data.experiment import BOMLExperiment

        return BOMLExperiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
