"""Linear solvers of the implicit hypergradients, built in the graph.

Each solver approximates the solution ``q`` of a linear system given only a
product (``matvec`` for ``A q = b``, ``vjp`` for ``q = b + J^T q``) on lists of
tensors, and returns a ``LinearSolve`` record whose ``converged`` and
``breakdown`` flags ``SolverMonitor`` turns into a warning or an error after
``BOMLOptimizer.run``.
"""
import collections
import warnings

import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import SolverError, SolverWarning

__all__ = ["LinearSolve", "SolverMonitor", "conjugate_gradient", "solve_cg", "neumann_series",
           "fixed_point_iteration", "FAILURE_MODES"]

#: What ``SolverMonitor`` does when a solve missed its tolerance or broke down.
FAILURE_MODES = ("warn", "raise", "ignore")

LinearSolve = collections.namedtuple("LinearSolve", ["solution", "iterations", "residual_norm", "tolerance",
                                                     "converged", "breakdown"])
LinearSolve.__doc__ = """Result of an in-graph linear solve (all entries are tensors).

Attributes:
    solution: list of tensors, the approximate solution ``q``.
    iterations: int32 scalar, products computed.
    residual_norm: the norm of the system's residual at the returned iterate (CG:
        ``||A q - b||``; fixed point: ``||b + J^T q_prev - q_prev||``).
    tolerance: the tolerance the residual was compared with.
    converged: bool scalar, ``residual_norm <= tolerance``.
    breakdown: bool scalar, CG met a direction of non-positive curvature (``p^T A p <= 0``:
        ``A`` is not positive definite) and stopped there.
"""


def _dot(a, b):
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(a, b)])


def _norm(a):
    return tf.sqrt(_dot(a, a))


def solve_cg(matvec, rhs, tolerance, max_iter):
    """Conjugate gradient for ``A q = rhs``, ``A`` symmetric positive definite, from ``q = 0``.

    Stops when ``||A q - rhs|| <= tolerance``, after ``max_iter`` iterations, or when
    the search direction has (numerically) no positive curvature, ``p^T A p <= 100 eps
    ||p||^2``, which happens when ``A`` is singular or indefinite (e.g. a softmax loss
    without regularization, a saddle point); the last iterate is then returned instead of
    diverging and ``breakdown`` is set.

    Args:
        matvec: function mapping a list of tensors ``p`` to ``A p``.
        rhs: list of tensors ``b``.
        tolerance: scalar (number or tensor).
        max_iter: maximum number of iterations (python int).

    Returns:
        A ``LinearSolve``.
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
    residual = tf.sqrt(result[1])
    return LinearSolve(solution=list(result[3:3 + n]), iterations=result[0], residual_norm=residual,
                       tolerance=tolerance, converged=residual <= tolerance, breakdown=tf.logical_not(result[2]))


def conjugate_gradient(matvec, rhs, tolerance, max_iter):
    """``solve_cg`` returning ``(q, iterations, residual_norm)`` (kept for compatibility)."""
    result = solve_cg(matvec, rhs, tolerance, max_iter)
    return result.solution, result.iterations, result.residual_norm


def neumann_series(matvec, rhs, alphas, terms):
    """The truncated Neumann series of ``A^{-1} rhs`` (Lorraine et al.).

    With a step ``alpha`` per tensor (``D = diag(alpha)``)::

        q_K = sum_{j=0..K} (I - D A)^j D b,

    i.e. ``v_0 = D b``, ``v_j = v_{j-1} - D A v_{j-1}``, ``q_K = v_0 + ... + v_K``: ``K``
    products with ``A``. It converges to ``A^{-1} b`` when the spectral radius of
    ``I - D A`` is below 1 (for a scalar ``alpha``: ``0 < alpha < 2 / lambda_max(A)``),
    with error ``(I - D A)^{K+1} A^{-1} b``. For ``A`` the Hessian of ``f`` and ``alpha``
    the gradient-descent step size, ``q_K`` is what back-propagating through ``K``
    further steps at the solution computes.

    Args:
        matvec: function mapping a list of tensors ``p`` to ``A p``.
        rhs: list of tensors ``b``.
        alphas: one step per tensor of ``rhs`` (scalars or shaped like it).
        terms: ``K``, the number of products (python int >= 0).

    Returns:
        A ``LinearSolve`` (``residual_norm`` is the norm of the last term added; it is
        never compared with a tolerance: ``converged`` is True).

    References:
        Lorraine, Vicol and Duvenaud, "Optimizing Millions of Hyperparameters by
        Implicit Differentiation", AISTATS 2020.
    """
    n = len(rhs)
    v0 = [a * b for a, b in zip(alphas, rhs)]

    def body(k, *flat):
        v, total = list(flat[:n]), list(flat[n:])
        av = matvec(v)
        v = [vi - a * avi for vi, a, avi in zip(v, alphas, av)]
        return [k + 1] + v + [t + vi for t, vi in zip(total, v)]

    if terms == 0:
        last, total, iterations = v0, v0, tf.constant(0)
    else:
        result = tf.while_loop(lambda k, *_: k < terms, body, [tf.constant(0)] + v0 + list(v0),
                               maximum_iterations=terms, name="neumann_series")
        iterations, last, total = result[0], list(result[1:1 + n]), list(result[1 + n:])
    dtype = rhs[0].dtype
    return LinearSolve(solution=total, iterations=iterations, residual_norm=_norm(last),
                       tolerance=tf.constant(np.inf, dtype), converged=tf.constant(True),
                       breakdown=tf.constant(False))


def fixed_point_iteration(vjp, rhs, tolerance, max_iter):
    """Solves ``q = rhs + J^T q`` by the iteration ``q_{k+1} = rhs + J^T q_k`` from ``q_0 = rhs``.

    ``J`` is the Jacobian of a contraction (the inner update at its fixed point): the
    iteration converges when its spectral radius is below 1, i.e. whenever the update
    itself converges linearly to the fixed point. Stops when
    ``||q_{k+1} - q_k|| <= tolerance`` or after ``max_iter`` products.

    Args:
        vjp: function mapping a list of tensors ``w`` to ``J^T w``.
        rhs: list of tensors.
        tolerance: scalar (number or tensor).
        max_iter: maximum number of products (python int >= 1).

    Returns:
        A ``LinearSolve``.

    References:
        Grazzi, Franceschi, Pontil and Salzo, "On the Iteration Complexity of
        Hypergradient Computation", ICML 2020.
    """
    dtype = rhs[0].dtype
    tolerance = tf.cast(tolerance, dtype)

    def cond(k, change, *_):
        return tf.logical_and(k < max_iter, change > tolerance)

    def body(k, change, *q):
        jq = vjp(list(q))
        new = [b + g for b, g in zip(rhs, jq)]
        change = _norm([a - b for a, b in zip(new, q)])
        return [k + 1, change] + new

    start = [tf.constant(0), tf.constant(np.inf, dtype)] + list(rhs)
    result = tf.while_loop(cond, body, start, maximum_iterations=max_iter, name="fixed_point")
    return LinearSolve(solution=list(result[2:]), iterations=result[0], residual_norm=result[1],
                       tolerance=tolerance, converged=result[1] <= tolerance, breakdown=tf.constant(False))


class SolverMonitor:
    """Collects the outcome of every task's solve during ``session.run`` and reports failures after it.

    ``watch`` attaches a recorder to the solution tensors; ``BOMLOptimizer.run`` calls
    ``report`` after each meta-iteration, which raises (``SolverError``), warns
    (``SolverWarning``, naming the largest residual) or does nothing. Warnings are issued
    at the 1st, 2nd, 4th, 8th ... failing meta-iteration (a tolerance schedule that
    tightens with ``k`` would otherwise warn at every one of a long run).

    Args:
        owner: the strategy's description for the messages ("Implicit (solver='cg')").
        mode: one of ``FAILURE_MODES``.
        advice: what to do, appended to the message.
    """

    def __init__(self, owner, mode, advice):
        self.owner, self.mode, self.advice = owner, mode, advice
        self._records = collections.deque(maxlen=4096)
        #: The records of the last reported meta-iteration: dicts with ``residual``,
        #: ``tolerance``, ``iterations``, ``converged`` and ``breakdown``.
        self.last_records = []
        #: Meta-iterations with at least one failed solve so far.
        self.failures = 0

    def watch(self, result):
        """Returns ``result.solution`` made to record ``result``'s flags when computed."""
        if self.mode == "ignore":
            return result.solution
        values = [tf.cast(result.residual_norm, tf.float64), tf.cast(result.tolerance, tf.float64),
                  result.iterations, result.converged, result.breakdown]
        record = tf.numpy_function(self._record, values, [], stateful=True, name="record_solver")
        with tf.control_dependencies([record]):
            return [tf.identity(v) for v in result.solution]

    def _record(self, residual, tolerance, iterations, converged, breakdown):
        self._records.append({"residual": float(residual), "tolerance": float(tolerance),
                              "iterations": int(iterations), "converged": bool(converged),
                              "breakdown": bool(breakdown)})

    def report(self, step):
        """Warns or raises when a solve of the last meta-iteration failed.

        Args:
            step: the meta-iteration, for the message.

        Raises:
            SolverError: ``mode="raise"`` and a solve missed its tolerance or broke down.
        """
        records = list(self._records)
        self._records.clear()
        self.last_records = records
        failed = [r for r in records if r["breakdown"] or not r["converged"]]
        if not failed or self.mode == "ignore":
            return
        self.failures += 1
        if self.mode == "warn" and self.failures & (self.failures - 1):
            return
        worst = max(failed, key=lambda r: r["residual"] / max(r["tolerance"], 1e-300))
        breakdowns = sum(r["breakdown"] for r in failed)
        message = (
            f"{self.owner}: the linear system of the hypergradient was not solved in {len(failed)} of "
            f"{len(records)} task(s) at meta-iteration {step}: residual {worst['residual']:.3g} "
            f"(tolerance {worst['tolerance']:.3g}) after {worst['iterations']} iteration(s)"
            + (f"; {breakdowns} solve(s) met non-positive curvature (the Hessian at y_T is not positive "
               f"definite)" if breakdowns else "")
            + f". {self.advice}"
        )
        if self.mode == "warn" and self.failures > 1:
            message += f" ({self.failures} meta-iterations failed so far; next warning at {2 * self.failures}.)"
        if self.mode == "raise":
            raise SolverError(message)
        warnings.warn(message, SolverWarning, stacklevel=5)  # the caller of BOMLOptimizer.run
