"""Adam as a differentiable inner optimizer."""
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError
from boml.extension import register_optimizer
from boml.optimizer.opt import BOMLOpt, as_dtype, safe_sqrt, validate_positive, validate_unit_interval


@register_optimizer("Adam")
class BOMLOptAdam(BOMLOpt):
    """Adam (Kingma & Ba, 2015), in the form of ``tf.compat.v1.train.AdamOptimizer``.

    Update at the 1-based step ``t``, with moments ``m`` and ``v`` (zero before
    the first step)::

        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        m'   = beta1 * m + (1 - beta1) * g
        v'   = beta2 * v + (1 - beta2) * g^2
        w'   = w - lr_t * m' / (sqrt(v') + epsilon)

    ``t`` is the ``step`` argument of ``step`` (the counter of each unrolled
    task), so every task has its own bias correction; the original BOML shared a
    single beta-power accumulator across tasks. Per-parameter ``learning_rates``
    replace ``lr`` element-wise.

    ``sqrt(v')`` is computed with ``safe_sqrt``: same value as ``tf.sqrt``, but a
    zero (instead of infinite) derivative where ``v' == 0``, so hypergradients stay
    finite when a gradient entry is exactly zero.

    ``epsilon_inside_sqrt=True`` gives the original BOML's variant
    ``w' = w - lr_t * m' / sqrt(v' + epsilon^2)`` (epsilon moved inside the root,
    which the original chose to keep the derivative of the root bounded). The
    default is the published form above, because it is the update that
    ``tf.compat.v1.train.AdamOptimizer`` (and every other Adam) performs, so a
    model trained with boml's inner Adam matches the usual one; the bounded
    derivative is already given by ``safe_sqrt``. The two forms differ by less than
    ``epsilon`` in the denominator.

    Slots: ``[m_1, ..., m_n, v_1, ..., v_n]`` for params ``[w_1, ..., w_n]`` (all
    first moments, then all second moments).

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    Args:
        learning_rate: step size (non-negative number, tensor or variable).
        beta1: decay of the first moment, in ``[0, 1)``.
        beta2: decay of the second moment, in ``[0, 1)``.
        epsilon: positive constant added to ``sqrt(v')``.
        use_locking: passed to the assign ops of ``minimize``.
        name: name of the ops and of the slot variables created by ``minimize``.
        epsilon_inside_sqrt: use ``sqrt(v' + epsilon^2)`` instead of
            ``sqrt(v') + epsilon`` (the original BOML's placement).

    Raises:
        InvalidArgumentError: invalid ``learning_rate``, ``beta1``, ``beta2``,
            ``epsilon``, ``name``, ``use_locking`` or ``epsilon_inside_sqrt``.
    """

    slot_names = ("m", "v")
    display_name = "Adam"

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, use_locking=False, name="Adam",
                 epsilon_inside_sqrt=False):
        super().__init__(learning_rate, name, use_locking=use_locking)
        owner = type(self).__name__
        self._beta1 = validate_unit_interval(beta1, "beta1", owner)
        self._beta2 = validate_unit_interval(beta2, "beta2", owner)
        self._epsilon = validate_positive(epsilon, "epsilon", owner)
        if not isinstance(epsilon_inside_sqrt, bool):
            raise InvalidArgumentError(
                f"{owner}: epsilon_inside_sqrt must be True or False; received {epsilon_inside_sqrt!r}. "
                f"Pass True for the original BOML's sqrt(v + epsilon^2).")
        self._epsilon_inside_sqrt = epsilon_inside_sqrt

    @property
    def beta1(self):
        return self._beta1

    @property
    def beta2(self):
        return self._beta2

    @property
    def epsilon(self):
        return self._epsilon

    @property
    def epsilon_inside_sqrt(self):
        return self._epsilon_inside_sqrt

    def _hyperparameters(self):
        extra = [("epsilon_inside_sqrt", True)] if self._epsilon_inside_sqrt else []
        return super()._hyperparameters() + [("beta1", self._beta1), ("beta2", self._beta2),
                                             ("epsilon", self._epsilon)] + extra

    def step(self, params, grads, slots, step, learning_rates=None):
        """One Adam update; ``slots`` is ``[m for each param] + [v for each param]``.

        ``step`` must be >= 1 (at ``t = 0`` the bias correction divides by zero).
        See ``BOMLOpt.step`` for the arguments.
        """
        params, grads, slots, rates = self._prepare(params, grads, slots, learning_rates)
        n = len(params)
        first, second = slots[:n], slots[n:]
        new_params, new_first, new_second = [], [], []
        for w, g, m, v, lr in zip(params, grads, first, second, rates):
            dtype = w.dtype.base_dtype
            beta1 = as_dtype(self._beta1, dtype)
            beta2 = as_dtype(self._beta2, dtype)
            epsilon = as_dtype(self._epsilon, dtype)
            t = as_dtype(step, dtype)
            one = tf.constant(1, dtype=dtype)
            lr_t = lr * tf.sqrt(one - tf.pow(beta2, t)) / (one - tf.pow(beta1, t))
            m_next = beta1 * m + (one - beta1) * g
            v_next = beta2 * v + (one - beta2) * g * g
            if self._epsilon_inside_sqrt:
                denominator = tf.sqrt(v_next + epsilon * epsilon)
            else:
                denominator = safe_sqrt(v_next) + epsilon
            new_params.append(w - lr_t * m_next / denominator)
            new_first.append(m_next)
            new_second.append(v_next)
        return new_params, new_first + new_second

