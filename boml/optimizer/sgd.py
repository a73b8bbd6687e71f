"""Plain gradient descent as a differentiable inner optimizer."""
from boml.extension import register_optimizer
from boml.optimizer.opt import BOMLOpt


@register_optimizer("SGD")
class BOMLOptSGD(BOMLOpt):
    """Gradient descent: ``w' = w - lr * g``.

    With per-parameter ``learning_rates`` (Meta-SGD, Li et al. 2017, "Meta-SGD:
    Learning to Learn Quickly for Few-Shot Learning") the step size multiplies the
    gradient element-wise. The optimizer has no state (no slots).

    Args:
        learning_rate: step size (non-negative number, tensor or variable).
        use_locking: passed to the assign ops of ``minimize``.
        name: name of the ops and of the step counter created by ``minimize``.

    Raises:
        InvalidArgumentError: invalid ``learning_rate``, ``use_locking`` or ``name``.
    """

    slot_names = ()
    display_name = "SGD"

    def __init__(self, learning_rate, use_locking=False, name="GradientDescent"):
        super().__init__(learning_rate, name, use_locking=use_locking)

    def step(self, params, grads, slots, step, learning_rates=None):
        """Returns ``([w - lr * g for each param], [])``; see ``BOMLOpt.step``."""
        params, grads, _, rates = self._prepare(params, grads, slots, learning_rates)
        new_params = [w - lr * g for w, g, lr in zip(params, grads, rates)]
        return new_params, []
