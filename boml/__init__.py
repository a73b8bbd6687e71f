"""boml: bilevel optimization for meta-learning on TensorFlow's graph mode.

The public names follow the original BOML library (Liu & Liu, "BOML: A
Modularized Bilevel Optimization Library in Python for Meta Learning", 2021).
Import ``tensorflow.compat.v1`` and build in graph mode (see ``boml.graph_mode``).
"""
from boml import errors, extension, utils
from boml.boml_optimizer import BOMLOptimizer
from boml.extension import get_outerparameter
from boml.load_data import (BOMLExperiment, BatchQueueMock, Dataset, Datasets, ImageNetMetaDataset, MetaDataset,
                            OmniglotMetaDataset, meta_mini_imagenet, meta_omniglot, meta_synthetic, mnist)
from boml.lower_iter import BOMLInnerGradAggr, BOMLInnerGradSimple, BOMLInnerGradTrad
from boml.optimizer import BOMLOpt, BOMLOptAdam, BOMLOptMomentum, BOMLOptSGD
from boml.upper_iter import (BOMLOuterGradDarts, BOMLOuterGradForward, BOMLOuterGradImplicit,
                             BOMLOuterGradReptile, BOMLOuterGradReverse, BOMLOuterGradSimple)

__version__ = "0.2.0"

__all__ = [
    "BOMLOptimizer", "BOMLExperiment", "BatchQueueMock", "Dataset", "Datasets", "MetaDataset", "meta_synthetic",
    "meta_omniglot", "meta_mini_imagenet", "mnist", "OmniglotMetaDataset", "ImageNetMetaDataset",
    "BOMLOpt", "BOMLOptSGD", "BOMLOptMomentum", "BOMLOptAdam",
    "BOMLInnerGradTrad", "BOMLInnerGradSimple", "BOMLInnerGradAggr",
    "BOMLOuterGradReverse", "BOMLOuterGradSimple", "BOMLOuterGradImplicit", "BOMLOuterGradDarts",
    "BOMLOuterGradForward", "BOMLOuterGradReptile",
    "get_outerparameter", "errors", "extension", "utils",
]

try:  # networks and real-data loaders (filled in by their modules)
    from boml.setup_model import *  # noqa: F401,F403
    from boml.setup_model import __all__ as _setup_all
    __all__ += list(_setup_all)
except ImportError:  # pragma: no cover - during development only
    pass
