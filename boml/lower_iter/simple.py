"""The MAML inner loop (``inner_method="Simple"``)."""
import dataclasses

from boml import extension
from boml.errors import InvalidArgumentError
from boml.lower_iter.inner_grad import BOMLInnerGradTrad, LowerOptions

#: Default ``while_loop_threshold``: below it the inner loop is unrolled in Python.
WHILE_LOOP_THRESHOLD = 16


@dataclasses.dataclass(frozen=True)
class SimpleLowerOptions(LowerOptions):
    """Options of ``Simple`` (those of ``LowerOptions`` and the following).

    Attributes:
        while_loop_threshold: from this many inner steps on (``T >= while_loop_threshold``)
            the inner loop is one ``tf.while_loop`` whose graph does not grow with T
            (its reverse pass keeps the T states: memory linear in T); below it the
            steps are unrolled in Python (a graph linear in T; the same speed at T=5,
            measured in docs/performance.rst). Default 16. WarpGrad's meta-objectives, which need
            every intermediate state, are always unrolled.
    """

    while_loop_threshold: int = WHILE_LOOP_THRESHOLD

    def validate(self, owner):
        super().validate(owner)
        value = self.while_loop_threshold
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(
                f"{owner}: while_loop_threshold must be a positive integer (the T from which the inner loop is a "
                f"tf.while_loop); received {value!r}. Pass for example while_loop_threshold=16, or 1 for always."
            )


@extension.register_lower_iter("Simple")
class BOMLInnerGradSimple(BOMLInnerGradTrad):
    """T fast-weight steps from the meta-initialization.

    ``theta_0 = x``, ``theta_t = theta_{t-1} - eta * grad f(theta_{t-1})`` with the
    user's inner objective (regularizers included) at every step; Momentum and
    Adam apply their recursions to the same gradient. With ``first_order=True``
    the gradient is a constant (FOMAML); with a learned step size this is
    Meta-SGD (``lr_granularity="element"`` as in the paper). The steps are
    unrolled in the graph for ``T < while_loop_threshold`` and one
    ``tf.while_loop`` otherwise (the same dynamics, see ``SimpleLowerOptions``).

    References:
        Finn et al., "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks", ICML 2017. Li et al., "Meta-SGD", arXiv:1707.09835, 2017.
    """

    Options = SimpleLowerOptions
    methods = ("MetaInit",)
    adapts_user_model = True

    @property
    def unroll_in_python(self):
        """True below ``while_loop_threshold`` (the unrolled graph), False from it on (one while_loop)."""
        return self.T < self.config.while_loop_threshold
