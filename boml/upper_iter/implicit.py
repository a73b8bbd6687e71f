"""Implicit hypergradient (HOAG)."""
import dataclasses

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions, add_gradients


def _dot(a, b):
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(a, b)])


def conjugate_gradient(matvec, rhs, tolerance, max_iter):
    """Solves ``A q = rhs`` for a symmetric positive semi-definite ``A`` in the graph.

    Stops when ``||A q - rhs|| <= tolerance``, after ``max_iter`` iterations, or
    when the search direction has (numerically) no positive curvature, which
    happens when ``A`` is singular (e.g. a softmax loss without regularization);
    the last iterate is then returned instead of diverging.

    Args:
        matvec: function mapping a list of tensors ``p`` to ``A p``.
        rhs: list of tensors.
        tolerance: scalar tensor.
        max_iter: maximum number of iterations (python int).

    Returns:
        ``(q, iterations, residual_norm)``.
    """
    dtype = rhs[0].dtype
    n = len(rhs)
    q0 = [tf.zeros_like(b) for b in rhs]
    tolerance = tf.cast(tolerance, dtype)
    tiny = tf.constant(100 * np.finfo(dtype.as_numpy_dtype).eps, dtype)

    def cond(k, rs, healthy, *_):
        return tf.logical_and(tf.logical_and(k < max_iter, healthy), tf.sqrt(rs) > tolerance)

    def body(k, rs, healthy, *flat):
        q, r, p = list(flat[:n]), list(flat[n:2 * n]), list(flat[2 * n:])
        ap = matvec(p)
        curvature = _dot(p, ap)
        healthy = curvature > tiny * _dot(p, p)
        step = tf.where(healthy, rs / tf.where(healthy, curvature, tf.ones_like(curvature)),
                        tf.zeros_like(rs))
        q = [qi + step * pi for qi, pi in zip(q, p)]
        r = [ri - step * api for ri, api in zip(r, ap)]
        rs_new = tf.where(healthy, _dot(r, r), rs)
        p = [ri + (rs_new / rs) * pi for ri, pi in zip(r, p)]
        return [k + 1, rs_new, healthy] + q + r + p

    rs0 = _dot(rhs, rhs)
    result = tf.while_loop(cond, body, [tf.constant(0), rs0, tf.constant(True)] + q0 + list(rhs) + list(rhs),
                           maximum_iterations=max_iter, name="conjugate_gradient")
    return list(result[3:3 + n]), result[0], tf.sqrt(result[1])


def _default_tolerance(k):
    return 0.1 * 0.9 ** k


@dataclasses.dataclass(frozen=True)
class ImplicitOptions(UpperOptions):
    """Options of ``Implicit``.

    Attributes:
        tolerance: callable ``k -> float`` (default ``0.1 * 0.9**k``) or a number;
            fed at every ``run``.
        cg_max_iter: maximum CG iterations (default 50).
        cg_damping: ``lambda >= 0`` added to the Hessian (``H + lambda I``), for
            inner objectives that are not strongly convex (default 0).
    """

    tolerance: object = None
    cg_max_iter: int = 50
    cg_damping: float = 0.0

    def validate(self, owner):
        super().validate(owner)
        if isinstance(self.cg_max_iter, bool) or not isinstance(self.cg_max_iter, int) or self.cg_max_iter < 1:
            raise InvalidArgumentError(f"cg_max_iter must be a positive integer; received {self.cg_max_iter!r}.")
        if isinstance(self.cg_damping, bool) or not isinstance(self.cg_damping, (int, float)) or self.cg_damping < 0:
            raise InvalidArgumentError(f"cg_damping must be a number >= 0; received {self.cg_damping!r}.")


@extension.register_upper_iter("Implicit")
class BOMLOuterGradImplicit(BOMLOuterGrad):
    """HOAG: the implicit-function hypergradient at the approximate solution y_T.

    With the optimality condition ``r(x, y) = grad_y f(x, y)`` of the lower problem
    (``dynamics.residual``) assumed to vanish at ``y_T``::

        dF/dx = grad_x F - (d r / dx)^T q,    with  (d r / dy) q = grad_y F,

    ``d r / dy`` being the Hessian of ``f``, reached by Hessian-vector products;
    the system is solved by conjugate gradient from ``q = 0`` until the residual
    norm falls below ``tolerance(k)`` at meta-iteration ``k`` (or ``cg_max_iter``
    iterations). The result does not depend on the path to ``y_T``, so it is
    defined for dynamics that converge to a stationary point: SGD and Momentum
    (Adam's constant-step iterates hover around it); a learned step size and an
    MT-net mask (which changes the fixed point) are refused.

    References:
        Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016.
    """

    Options = ImplicitOptions
    inner_methods = ("Trad",)
    inner_optimizers = ("SGD", "Momentum")
    supports_learned_lr = False
    supports_mask = False

    def __init__(self, inner_method=None, truncate_iter=-1, **options):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **options)
        self.set_tolerance(self.config.tolerance)
        self.tolerance_placeholder = tf.placeholder_with_default(tf.constant(0.1, tf.float64), [], name="tolerance")

    @property
    def cg_max_iter(self):
        return self.config.cg_max_iter

    @property
    def cg_damping(self):
        return float(self.config.cg_damping)

    def set_tolerance(self, tolerance=None):
        """Sets the tolerance schedule ``k -> float``."""
        if tolerance is None:
            tolerance = _default_tolerance
        if not callable(tolerance):
            value = float(tolerance)
            tolerance = lambda k: value  # noqa: E731
        self.tolerance = tolerance

    def feed_dict(self, global_step):
        """Feeds the tolerance of meta-iteration ``global_step``."""
        return {self.tolerance_placeholder: float(self.tolerance(global_step))}

    def task_hypergradients(self, dynamics):
        solution = [tf.stop_gradient(y) for y in dynamics.unroll(differentiable=False).final]
        residual = dynamics.residual(solution)
        outer_grads = dynamics.gradient(dynamics.outer_value(solution), solution)

        def hessian_vector(p):
            point = [tf.identity(y) for y in solution]
            hvp = tf.gradients(dynamics.residual(point), point, grad_ys=p)
            return [(tf.zeros_like(v) if h is None else h) + self.cg_damping * v for h, v in zip(hvp, p)]

        q, _, _ = conjugate_gradient(hessian_vector, outer_grads, self.tolerance_placeholder, self.cg_max_iter)
        q = [tf.stop_gradient(v) for v in q]
        direct = tf.gradients(dynamics.outer_value(solution), dynamics.meta_locals)
        mixed = tf.gradients(-tf.add_n([tf.reduce_sum(g * v) for g, v in zip(residual, q)]), dynamics.meta_locals)
        return add_gradients(direct, mixed), solution
