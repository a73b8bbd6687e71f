"""The MAML inner loop (``inner_method="Simple"``)."""
from boml import extension
from boml.lower_iter.inner_grad import BOMLInnerGradTrad


@extension.register_lower_iter("Simple")
class BOMLInnerGradSimple(BOMLInnerGradTrad):
    """T fast-weight steps from the meta-initialization, unrolled in the graph.

    ``theta_0 = x``, ``theta_t = theta_{t-1} - eta * grad f(theta_{t-1})`` with the
    user's inner objective (regularizers included) at every step; Momentum and
    Adam apply their recursions to the same gradient. With ``first_order=True``
    the gradient is a constant (FOMAML); with a learned step size this is
    Meta-SGD (``lr_granularity="element"`` as in the paper).

    References:
        Finn et al., "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks", ICML 2017. Li et al., "Meta-SGD", arXiv:1707.09835, 2017.
    """

    methods = ("MetaInit",)
    unroll_in_python = True
    adapts_user_model = True
