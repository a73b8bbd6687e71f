"""Implicit hypergradient (HOAG)."""
import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.lower_iter.inner_grad import inner_gradient
from boml.upper_iter.outer_grad import BOMLOuterGrad, add_gradients


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


@extension.register_upper_iter("Implicit")
class BOMLOuterGradImplicit(BOMLOuterGrad):
    """HOAG: the implicit-function hypergradient at the approximate solution y_T.

    Assuming ``grad_y f(x, y_T) = 0``::

        dF/dx = grad_x F - (d^2 f / dx dy) q,    with  (d^2 f / dy^2) q = grad_y F,

    the linear system solved by conjugate gradient with Hessian-vector products,
    from ``q = 0``, until the residual norm falls below ``tolerance(k)`` at
    meta-iteration ``k`` (or ``cg_max_iter`` iterations).

    Args:
        tolerance: callable ``k -> float`` (default ``0.1 * 0.9**k``); it is fed
            at every ``run``.
        cg_max_iter: maximum CG iterations (default 50).
        cg_damping: ``lambda >= 0`` added to the Hessian (``H + lambda I``), for
            inner objectives that are not strongly convex (default 0).

    References:
        Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016.
    """

    def __init__(self, inner_method=None, truncate_iter=-1, tolerance=None, cg_max_iter=50, cg_damping=0.0,
                 **config):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **config)
        if not isinstance(cg_max_iter, int) or cg_max_iter < 1:
            raise InvalidArgumentError(f"cg_max_iter must be a positive integer; received {cg_max_iter!r}.")
        if not isinstance(cg_damping, (int, float)) or cg_damping < 0:
            raise InvalidArgumentError(f"cg_damping must be a number >= 0; received {cg_damping!r}.")
        self.cg_max_iter = cg_max_iter
        self.cg_damping = float(cg_damping)
        self.set_tolerance(tolerance)
        self.tolerance_placeholder = tf.placeholder_with_default(tf.constant(0.1, tf.float64), [], name="tolerance")

    def set_tolerance(self, tolerance=None):
        """Sets the tolerance schedule ``k -> float``."""
        if tolerance is None:
            tolerance = lambda k: 0.1 * (0.9 ** k)  # noqa: E731
        if not callable(tolerance):
            value = float(tolerance)
            tolerance = lambda k: value  # noqa: E731
        self.tolerance = tolerance

    def feed_dict(self, global_step):
        """Feeds the tolerance of meta-iteration ``global_step``."""
        return {self.tolerance_placeholder: float(self.tolerance(global_step))}

    def task_hypergradients(self, task, inner_grad, outer_objective):
        trajectory = inner_grad.unroll(task, differentiable=False)
        solution = [tf.stop_gradient(y) for y in trajectory.final]
        local_inner = task.local(inner_grad.inner_objective)
        local_outer = task.local(outer_objective)
        outer = task.at_state(local_outer, solution)
        inner_grads, inner = inner_gradient(task, local_inner, solution)
        outer_grads, _ = inner_gradient(task, local_outer, solution)

        def hessian_vector(p):
            point = [tf.identity(y) for y in solution]
            grads, _ = inner_gradient(task, local_inner, point)
            hvp = tf.gradients(grads, point, grad_ys=p)
            return [(tf.zeros_like(v) if h is None else h) + self.cg_damping * v for h, v in zip(hvp, p)]

        q, iterations, residual = conjugate_gradient(hessian_vector, outer_grads, self.tolerance_placeholder,
                                                     self.cg_max_iter)
        q = [tf.stop_gradient(v) for v in q]
        direct = tf.gradients(outer, task.meta_locals)
        mixed = tf.gradients(-tf.add_n([tf.reduce_sum(g * v) for g, v in zip(inner_grads, q)]), task.meta_locals)
        return add_gradients(direct, mixed), outer, inner
