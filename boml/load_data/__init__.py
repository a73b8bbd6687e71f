"""Data: episodes (numpy) and the experiment placeholders (TensorFlow)."""
from boml.load_data.datasets import *  # noqa: F401,F403
from boml.load_data.datasets import __all__ as _datasets_all
from boml.load_data.experiment import BOMLExperiment

__all__ = ["BOMLExperiment"] + list(_datasets_all)
