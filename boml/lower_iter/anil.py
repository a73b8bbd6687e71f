"""ANIL (``inner_method="ANIL"``): the inner loop adapts the head only, the body is meta-learned."""
import dataclasses

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.helpers import is_positive_int
from boml.lower_iter.simple import BOMLInnerGradSimple, SimpleLowerOptions

__all__ = ["BOMLInnerGradANIL", "AnilOptions"]


@dataclasses.dataclass(frozen=True)
class AnilOptions(SimpleLowerOptions):
    """Options of ``ANIL`` (those of ``Simple``, ``while_loop_threshold`` included, and the following).

    Attributes:
        head: the task variables the inner loop adapts: a count ``n >= 1`` of trailing
            entries of ``var_list``, or a list of the head's variables. Default None: the
            output layer, i.e. the last two task variables (every boml MetaInit network lists
            its output weights and bias last), or the only one of a single-variable ``var_list``.
    """

    head: object = None

    def validate(self, owner):
        super().validate(owner)
        if self.head is None or is_positive_int(self.head):
            return
        if isinstance(self.head, (list, tuple)) and self.head and \
                all(isinstance(v, tf.Variable) or hasattr(v, "ref") for v in self.head):
            return
        raise InvalidArgumentError(
            f"{owner}: head must be a positive number of trailing task variables or a non-empty list of task "
            f"variables; received {self.head!r}. The default (None) is the output layer of boml's MetaInit networks.")


@extension.register_lower_iter("ANIL")
class BOMLInnerGradANIL(BOMLInnerGradSimple):
    """MAML's inner loop restricted to the head: ``phi_t = phi_{t-1} - eta grad_phi f(b, phi_{t-1})``.

    The body ``b`` keeps its episode start (the meta-parameters) during adaptation: its
    direction is zero, so every optimizer leaves it in place, and the gradient of the
    inner objective is taken w.r.t. the head only (a backward pass through the last layer).
    With ``outer_method="Simple"`` the meta-gradient is MAML's for this inner loop: the
    head's initialization and the body both receive ``dF(b, phi_T(b, phi_0)) / d(b, phi_0)``
    through the unrolled head updates (second order unless ``first_order=True``).

    Raises:
        InvalidArgumentError: ``head`` names a variable that is not in ``var_list``, or
            counts more variables than ``var_list`` has.

    References:
        Raghu, Raghu, Bengio and Vinyals, "Rapid Learning or Feature Reuse? Towards
        Understanding the Effectiveness of MAML", ICLR 2020.
    """

    Options = AnilOptions
    outer_methods = ("Simple",)

    def __init__(self, inner_objective, var_list, *args, **kwargs):
        super().__init__(inner_objective, var_list, *args, **kwargs)
        head, owner = self.config.head, f"inner_method {type(self).__name__}"
        if head is None:
            head = min(2, len(self.var_list))
        if is_positive_int(head):
            if head > len(self.var_list):
                raise InvalidArgumentError(
                    f"{owner}: head={head} counts more task variables than var_list has ({len(self.var_list)}). "
                    f"Pass head <= {len(self.var_list)} or the list of the head's variables.")
            self.adapts = [index >= len(self.var_list) - head for index in range(len(self.var_list))]
        else:
            known = {v.ref() for v in self.var_list}
            foreign = [getattr(v, "name", repr(v)) for v in head if v.ref() not in known]
            if foreign:
                raise InvalidArgumentError(
                    f"{owner}: the head variables {foreign} are not task variables (var_list is "
                    f"{[v.name for v in self.var_list]}). Pass variables of var_list, or a count of its last entries.")
            wanted = {v.ref() for v in head}
            self.adapts = [v.ref() in wanted for v in self.var_list]

    @property
    def head_variables(self):
        """The task variables the inner loop adapts."""
        return [v for v, adapts in zip(self.var_list, self.adapts) if adapts]

    def direction(self, dynamics, t, state, hyperparameters):
        value = dynamics.at_state(dynamics.inner_objective, state)
        head = [s for s, adapts in zip(state, self.adapts) if adapts]
        grads = iter(dynamics.gradient(value, head))
        return [next(grads) if adapts else tf.zeros_like(s) for s, adapts in zip(state, self.adapts)]
