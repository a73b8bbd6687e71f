"""Heavy-ball (and Nesterov) momentum as a differentiable inner optimizer."""
from boml.errors import InvalidArgumentError
from boml.extension import register_optimizer
from boml.optimizer.opt import BOMLOpt, as_dtype, validate_unit_interval


@register_optimizer("Momentum")
class BOMLOptMomentum(BOMLOpt):
    """Gradient descent with momentum (heavy ball).

    Update, with accumulator ``m`` (zero before the first step)::

        m' = mu * m + g
        w' = w - lr * m'                    (heavy ball, Polyak 1964)
        w' = w - lr * (g + mu * m')         (use_nesterov=True)

    This is the convention of ``tf.compat.v1.train.MomentumOptimizer`` (the
    accumulator sums raw gradients; the learning rate is applied to it).
    Per-parameter ``learning_rates`` multiply element-wise.

    Slots: one accumulator ``m`` per parameter, in the order of the parameters.

    References:
        Polyak, "Some methods of speeding up the convergence of iteration methods",
        USSR Computational Mathematics and Mathematical Physics, 1964.
        Nesterov, "A method for solving the convex programming problem with
        convergence rate O(1/k^2)", Soviet Mathematics Doklady, 1983.

    Args:
        learning_rate: step size (non-negative number, tensor or variable).
        momentum: ``mu`` in ``[0, 1)`` (or a tensor/variable).
        use_locking: passed to the assign ops of ``minimize``.
        name: name of the ops and of the slot variables created by ``minimize``.
        use_nesterov: use the Nesterov look-ahead form above.

    Raises:
        InvalidArgumentError: invalid ``learning_rate``, ``momentum``, ``name`` or
            a non-boolean ``use_locking`` or ``use_nesterov``.
    """

    slot_names = ("m",)
    display_name = "Momentum"

    def __init__(self, learning_rate, momentum=0.5, use_locking=False, name="Momentum", use_nesterov=False):
        super().__init__(learning_rate, name, use_locking=use_locking)
        self._momentum = validate_unit_interval(momentum, "momentum", type(self).__name__)
        if not isinstance(use_nesterov, bool):
            raise InvalidArgumentError(
                f"{type(self).__name__}: use_nesterov must be True or False; received {use_nesterov!r}. "
                f"Pass a boolean.")
        self._use_nesterov = use_nesterov

    @property
    def momentum(self):
        return self._momentum

    @property
    def use_nesterov(self):
        return self._use_nesterov

    def _hyperparameters(self):
        return super()._hyperparameters() + [("momentum", self._momentum), ("nesterov", self._use_nesterov)]

    def step(self, params, grads, slots, step, learning_rates=None):
        """One momentum update; ``slots`` is ``[m for each param]``. See ``BOMLOpt.step``."""
        params, grads, slots, rates = self._prepare(params, grads, slots, learning_rates)
        new_params, new_slots = [], []
        for w, g, m, lr in zip(params, grads, slots, rates):
            mu = as_dtype(self._momentum, w.dtype.base_dtype)
            m_next = mu * m + g
            direction = g + mu * m_next if self._use_nesterov else m_next
            new_params.append(w - lr * direction)
            new_slots.append(m_next)
        return new_params, new_slots
