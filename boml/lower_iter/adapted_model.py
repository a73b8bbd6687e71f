"""The task network as the original BOML showed it after ``ll_problem``: at the adapted weights.

In the original, ``ll_problem`` (MetaInit) replaced ``experiment.model`` by the
network at the fast weights ``theta_T``, graph tensors of the support feed, so a
tensor built afterwards from ``ex.model.re_forward(ex.x_).out`` evaluates, in a
plain ``session.run`` with one episode's support and query feed, at the adapted
weights. ``AdaptedModel`` restores exactly that, lazily (the adaptation graph is
built on the first use), and the strategies map such tensors back onto the task
variables (``BOMLInnerGrad.on_task_variables``) before they differentiate them.
"""
from collections import OrderedDict

import tensorflow.compat.v1 as tf

__all__ = ["AdaptedModel"]


class AdaptedModel:
    """A view of a task network whose forward passes use the adapted weights ``theta_T``.

    Every other attribute (``var_list``, ``outer_param_dict`` ...) is the wrapped
    network's.

    Args:
        network: the base learner (a ``BOMLNet``).
        strategy: the lower strategy adapting ``network.var_list``.
    """

    def __init__(self, network, strategy):
        self._network = network
        self._strategy = strategy
        self._out = None

    @property
    def network(self):
        """The wrapped network (on the task variables)."""
        return self._network

    def _adapted_parameters(self):
        adapted = self._strategy.adapted_on_placeholders()
        by_ref = {v.ref(): a for v, a in zip(self._strategy.var_list, adapted)}
        return OrderedDict((key, by_ref[value.ref()]) for key, value in self._network.task_parameter.items()
                           if hasattr(value, "ref") and value.ref() in by_ref)

    def re_forward(self, new_input=None, task_parameter=None):
        """The network at ``theta_T`` on ``new_input`` (default: the support input)."""
        params = self._adapted_parameters()
        params.update(task_parameter or {})
        return self._network.re_forward(new_input, task_parameter=params)

    @property
    def out(self):
        """The output on the support input at ``theta_T``."""
        if self._out is None:
            self._out = self.re_forward().out
        return self._out

    def __getattr__(self, name):
        return getattr(self._network, name)

    def __repr__(self):
        return f"<AdaptedModel of {self._network!r}>"


def pull_back(tensors, pairs):
    """``tensors`` with the adapted weights replaced by the task variables they adapt."""
    from boml.substitute import Substitution

    if not pairs:
        return tensors
    return Substitution([(adapted, tf.convert_to_tensor(var)) for adapted, var in pairs])(tensors)
