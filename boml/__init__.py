"""boml: bilevel optimization for meta-learning on TensorFlow's graph mode.

The public names follow the original BOML library (Liu & Liu, "BOML: A
Modularized Bilevel Optimization Library in Python for Meta Learning", 2021).
Import ``tensorflow.compat.v1`` and build in graph mode (see ``boml.graph_mode``).

Importing boml imports TensorFlow and registers the built-in strategies,
optimizers and networks. The command line (``python -m boml``, the ``boml``
script) is the one exception: it imports them on first use, so that ``--help``
and ``presets`` answer without loading TensorFlow.
"""
import importlib
import os
import sys

__version__ = "0.2.0"
_LOADING = False  # True while _import_all runs: submodules then import as usual


#: Module -> the public names boml re-exports from it (the sub-modules themselves for "boml").
_EXPORTS = {
    "boml": ["errors", "extension", "utils"],
    "boml.boml_optimizer": ["BOMLOptimizer"],
    "boml.extension": ["get_outerparameter"],
    "boml.load_data": ["BOMLExperiment", "BatchQueueMock", "Dataset", "Datasets", "MetaDataset", "meta_synthetic",
                       "meta_omniglot", "meta_mini_imagenet", "mnist", "OmniglotMetaDataset", "ImageNetMetaDataset"],
    "boml.optimizer": ["BOMLOpt", "BOMLOptSGD", "BOMLOptMomentum", "BOMLOptAdam"],
    "boml.lower_iter": ["BOMLInnerGradTrad", "BOMLInnerGradSimple", "BOMLInnerGradAggr"],
    "boml.upper_iter": ["BOMLOuterGradReverse", "BOMLOuterGradSimple", "BOMLOuterGradImplicit", "BOMLOuterGradDarts",
                        "BOMLOuterGradForward", "BOMLOuterGradReptile"],
}


def _import_all():
    """Imports the public names (and so registers the built-in strategies, optimizers and networks)."""
    if "__all__" in globals() or _LOADING:
        return
    globals()["_LOADING"] = True
    try:
        names = {}
        for module_name, exported in _EXPORTS.items():
            for name in exported:
                if module_name == "boml":
                    names[name] = importlib.import_module(f"boml.{name}")
                else:
                    names[name] = getattr(importlib.import_module(module_name), name)
        order = ["BOMLOptimizer", *_EXPORTS["boml.load_data"], *_EXPORTS["boml.optimizer"],
                 *_EXPORTS["boml.lower_iter"], *_EXPORTS["boml.upper_iter"], "get_outerparameter", *_EXPORTS["boml"]]
        try:  # networks and real-data loaders (filled in by their modules)
            setup_model = importlib.import_module("boml.setup_model")
        except ImportError:  # pragma: no cover - during development only
            setup_model = None
        if setup_model is not None:
            names.update({name: getattr(setup_model, name) for name in setup_model.__all__})
            order += list(setup_model.__all__)
        globals().update(names)
        globals()["__all__"] = order
    finally:
        globals()["_LOADING"] = False


def _started_by_the_command_line():
    """True while ``python -m boml`` locates its module (``sys.argv[0] == "-m"``) or under the ``boml`` script."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.splitext(os.path.basename(first))[0] == "boml"


def __getattr__(name):
    if _LOADING or (name.startswith("__") and name != "__all__"):
        raise AttributeError(f"module 'boml' has no attribute {name!r}")
    _import_all()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module 'boml' has no attribute {name!r}") from None


if not _started_by_the_command_line():
    _import_all()
