"""Differentiable inner optimizers (pure update rules) and their registry helper.

Each optimizer is registered in ``boml.extension.OPTIMIZERS`` under its short
name ("SGD", "Momentum", "Adam"); ``make_optimizer`` builds one from that name.
"""
import inspect

from boml import extension
from boml.optimizer.adam import BOMLOptAdam
from boml.optimizer.momentum import BOMLOptMomentum
from boml.optimizer.opt import BOMLOpt, safe_sqrt
from boml.optimizer.sgd import BOMLOptSGD

__all__ = ["BOMLOpt", "BOMLOptSGD", "BOMLOptMomentum", "BOMLOptAdam", "make_optimizer", "safe_sqrt"]


def make_optimizer(name, learning_rate, **kwargs):
    """Builds the inner optimizer registered under ``name``.

    Only the keyword arguments accepted by the optimizer's constructor are
    passed on (e.g. ``momentum`` for "Momentum", ``beta1``/``beta2``/``epsilon``
    for "Adam"); the others are ignored, so one dictionary of settings can serve
    every optimizer.

    Args:
        name: registry name ("SGD", "Momentum", "Adam" or a user-registered one).
        learning_rate: step size passed to the constructor.
        **kwargs: further constructor arguments.

    Returns:
        The optimizer instance.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the names).
        InvalidArgumentError: the constructor rejects an argument value.
    """
    factory = extension.OPTIMIZERS.get(name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: pass everything
        return factory(learning_rate, **kwargs)
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        accepted = kwargs
    else:
        names = {p.name for p in parameters
                 if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        accepted = {key: value for key, value in kwargs.items() if key in names and key != "learning_rate"}
    return factory(learning_rate, **accepted)
