"""The DARTS finite-difference hypergradient."""
import dataclasses

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions, add_gradients


@dataclasses.dataclass(frozen=True)
class DartsOptions(UpperOptions):
    """Options of ``Darts``.

    Attributes:
        epsilon: finite-difference scale (default 0.01, as in the DARTS paper).
    """

    epsilon: float = 0.01

    def validate(self, owner):
        super().validate(owner)
        if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, (int, float)) or self.epsilon <= 0:
            raise InvalidArgumentError(f"epsilon must be a positive number; received {self.epsilon!r}. Try 0.01.")


@extension.register_upper_iter("Darts")
class BOMLOuterGradDarts(BOMLOuterGrad):
    """One-step hypergradient with a finite-difference Hessian-vector product.

    The last inner step ``y_T = Phi_T(w, s; x)`` (``dynamics.apply_direction`` of the
    direction ``d = grad_w psi(x, w)``, ``psi`` the step potential: ``f`` for Trad,
    the BDA mixture for Aggr) is differentiated with ``w = y_{T-1}`` and its slots
    ``s`` held fixed. With ``v = grad_y F(y_T)``, the chain rule through the real
    inner step (any optimizer, mask, learned step sizes) gives::

        dF/dx ~= grad_x F(y_T) + grad_x <Phi_T(w, s, d; x), v>|_d fixed
                 - (d^2 psi / dx dw) u,            u = -(dPhi_T / dd)^T v

    (for SGD ``u = eta * v``), and the mixed second derivative is the central
    difference ``[grad_x psi(x, w + r u) - grad_x psi(x, w - r u)] / (2 r)`` with
    ``r = epsilon / ||u||`` (the same ``r`` scales the perturbation and the
    denominator; the original used two different scales). Up to O(r^2) this equals
    one-step Reverse (``truncate_iter=1``) for every inner optimizer.

    References:
        Liu, Simonyan and Yang, "DARTS: Differentiable Architecture Search", ICLR 2019.
    """

    Options = DartsOptions
    inner_methods = ("Trad", "Aggr")

    @property
    def epsilon(self):
        return float(self.config.epsilon)

    @property
    def Epsilon(self):  # noqa: N802 - the original attribute name
        return self.epsilon

    def task_hypergradients(self, dynamics):
        trajectory = dynamics.unroll(differentiable=False, keep_previous=True)
        final = trajectory.final
        previous = [tf.stop_gradient(y) for y in trajectory.previous]
        previous_slots = [tf.stop_gradient(s) for s in trajectory.previous_slots]
        last = dynamics.T
        outer = dynamics.outer_value(final)
        v = dynamics.gradient(outer, final)
        # The last step as a function of its direction (a constant here) and of the hyperparameters.
        direction = [tf.identity(tf.stop_gradient(d)) for d in dynamics.direction(last, previous)]
        stepped, _ = dynamics.apply_direction(last, previous, previous_slots, direction, stop_direction=False)
        pairing = tf.add_n([tf.reduce_sum(y * tf.stop_gradient(g)) for y, g in zip(stepped, v)])
        through_direction = tf.gradients(pairing, direction)
        u = [tf.stop_gradient(tf.zeros_like(d) if g is None else -g) for g, d in zip(through_direction, direction)]
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(x)) for x in u]))
        dtype = norm.dtype
        r = tf.cast(self.epsilon, dtype) / tf.maximum(norm, tf.cast(1e-30, dtype))
        plus = dynamics.potential(last, [w + r * d for w, d in zip(previous, u)])
        minus = dynamics.potential(last, [w - r * d for w, d in zip(previous, u)])
        g_plus = tf.gradients(plus, dynamics.meta_locals)
        g_minus = tf.gradients(minus, dynamics.meta_locals)
        fd = [None if a is None and b is None else
              -((0 if a is None else a) - (0 if b is None else b)) / (2.0 * r) for a, b in zip(g_plus, g_minus)]
        direct = tf.gradients(outer, dynamics.meta_locals)
        hyper = tf.gradients(pairing, dynamics.meta_locals)
        return add_gradients(add_gradients(direct, fd), hyper), final
