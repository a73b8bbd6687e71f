"""Implicit hypergradients (HOAG, and iMAML on the ``Proximal`` lower strategy): CG, Neumann, fixed point."""
import dataclasses

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.helpers import isinteger
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions, add_gradients
from boml.upper_iter.solvers import (FAILURE_MODES, SolverMonitor, conjugate_gradient, fixed_point_iteration,
                                     neumann_series, solve_cg)

__all__ = ["BOMLOuterGradImplicit", "ImplicitOptions", "SOLVERS", "conjugate_gradient"]

#: The linear solvers of ``Implicit`` (``ul_problem(solver=...)``).
SOLVERS = ("cg", "neumann", "fixed_point")
#: Options that only one solver reads (a value other than the default with another solver is refused).
_SOLVER_OPTIONS = {"cg_max_iter": ("cg",), "neumann_terms": ("neumann",), "neumann_alpha": ("neumann",),
                   "fixed_point_max_iter": ("fixed_point",), "cg_damping": ("cg", "neumann"),
                   "tolerance": ("cg", "fixed_point"), "solver_failure": ("cg", "fixed_point")}


def _default_tolerance(k):
    return 0.1 * 0.9 ** k


def _is_number(value):
    return isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and np.isfinite(value)


def _unset(value, default):
    """The value means "not set": the default itself, or a number equal to it."""
    if value is default:
        return True
    if isinstance(value, bool) or callable(value) or value is None or default is None:
        return False
    return value == default


def _dot(a, b):
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(a, b)])


def _zeros_for_none(grads, like):
    return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, like)]


@dataclasses.dataclass(frozen=True)
class ImplicitOptions(UpperOptions):
    """Options of ``Implicit``.

    Attributes:
        solver: how the linear system of the hypergradient is solved: ``"cg"``
            (conjugate gradient, default), ``"neumann"`` (truncated Neumann series) or
            ``"fixed_point"`` (fixed-point iteration on the Jacobian of the real inner update).
        tolerance: ``cg`` and ``fixed_point``: callable ``k -> float`` (default
            ``0.1 * 0.9**k``) or a number, the residual norm to reach at meta-iteration ``k``;
            fed at every ``run``.
        cg_max_iter: ``cg``: maximum CG iterations (default 50).
        cg_damping: ``cg`` and ``neumann``: ``lambda >= 0`` added to the Hessian, so that
            ``(H + lambda I) q = grad_y F`` is solved (default 0). It makes the system positive
            definite when the inner objective is not strongly convex at ``y_T`` (a softmax loss
            without weight decay, a saddle point) at the price of a bias of order
            ``lambda ||H^{-1}||``; a value near the smallest eigenvalue you trust, e.g. 1e-3 to 1e-2
            times the largest, is the usual choice.
        neumann_terms: ``neumann``: ``K``, the number of Hessian-vector products (default 20).
        neumann_alpha: ``neumann``: the step ``alpha`` of the series, which converges for
            ``0 < alpha < 2 / lambda_max(H)`` (default None: the inner step size of each variable).
        fixed_point_max_iter: ``fixed_point``: maximum products with the Jacobian of the
            inner update (default 100).
        solver_failure: ``cg`` and ``fixed_point``: what ``run`` does when a task's solve
            stopped above its tolerance or CG met non-positive curvature: ``"warn"`` (a
            ``SolverWarning`` naming the residual, once per meta-iteration; default),
            ``"raise"`` (``SolverError``) or ``"ignore"``.
    """

    tolerance: object = None
    solver: str = "cg"
    cg_max_iter: int = 50
    cg_damping: float = 0.0
    neumann_terms: int = 20
    neumann_alpha: float = None
    fixed_point_max_iter: int = 100
    solver_failure: str = "warn"

    def validate(self, owner):
        super().validate(owner)
        if self.solver not in SOLVERS:
            raise InvalidArgumentError(
                f"{owner}: solver must be one of {list(SOLVERS)}; received {self.solver!r}. Use 'cg' for HOAG.")
        if not (isinteger(self.cg_max_iter) and self.cg_max_iter >= 1):
            raise InvalidArgumentError(f"cg_max_iter must be a positive integer; received {self.cg_max_iter!r}.")
        if not _is_number(self.cg_damping) or self.cg_damping < 0:
            raise InvalidArgumentError(f"cg_damping must be a number >= 0; received {self.cg_damping!r}.")
        if not (isinteger(self.neumann_terms) and self.neumann_terms >= 0):
            raise InvalidArgumentError(
                f"{owner}: neumann_terms must be an integer >= 0; received {self.neumann_terms!r}. Try 20.")
        if self.neumann_alpha is not None and (not _is_number(self.neumann_alpha) or self.neumann_alpha <= 0):
            raise InvalidArgumentError(
                f"{owner}: neumann_alpha must be a positive number below 2 / lambda_max(H), or None for the inner "
                f"step size; received {self.neumann_alpha!r}.")
        if not (isinteger(self.fixed_point_max_iter) and self.fixed_point_max_iter >= 1):
            raise InvalidArgumentError(
                f"{owner}: fixed_point_max_iter must be a positive integer; received {self.fixed_point_max_iter!r}.")
        if self.solver_failure not in FAILURE_MODES:
            raise InvalidArgumentError(
                f"{owner}: solver_failure must be one of {list(FAILURE_MODES)}; received {self.solver_failure!r}.")
        if self.tolerance is not None and not callable(self.tolerance) and \
                (not _is_number(self.tolerance) or self.tolerance < 0):
            raise InvalidArgumentError(
                f"{owner}: tolerance must be a number >= 0 or a callable k -> float; received {self.tolerance!r}.")
        for name, solvers in _SOLVER_OPTIONS.items():
            default = ImplicitOptions.__dataclass_fields__[name].default
            value = getattr(self, name)
            if self.solver not in solvers and not _unset(value, default):
                raise InvalidArgumentError(
                    f"{owner}: {name}={value!r} is used by solver={' or '.join(map(repr, solvers))} only; received "
                    f"solver={self.solver!r}. Remove {name}, or choose that solver.")


@extension.register_upper_iter("Implicit")
class BOMLOuterGradImplicit(BOMLOuterGrad):
    """The implicit-function hypergradient at the approximate solution y_T (HOAG).

    With the optimality condition ``r(x, y) = grad_y f(x, y)`` of the lower problem
    (``dynamics.residual``) assumed to vanish at ``y_T``::

        dF/dx = grad_x F - (d r / dx)^T q,    with  (H + cg_damping I) q = grad_y F,

    ``H = d r / dy`` being the Hessian of ``f``, reached by Hessian-vector products.
    ``solver`` chooses how ``q`` is found:

    * ``"cg"``: conjugate gradient from ``q = 0`` until the residual norm falls below
      ``tolerance(k)`` at meta-iteration ``k`` (or ``cg_max_iter`` iterations);
    * ``"neumann"``: ``q = sum_{j=0..K} (I - alpha H)^j alpha grad_y F`` with
      ``K = neumann_terms`` (Lorraine et al.), i.e. ``K`` more steps of gradient descent
      back-propagated at ``y_T``;
    * ``"fixed_point"``: the hypergradient of the fixed point ``z* = Phi(z*; x)`` of the
      real inner update (state and optimizer slots ``z = (y, s)``, e.g. heavy-ball momentum)::

          dF/dx = grad_x F + (d Phi / dx)^T w,    w = grad_z F + (d Phi / dz)^T w,

      solved by the iteration ``w <- grad_z F + (d Phi / dz)^T w`` (vector-Jacobian
      products of one real step) until ``||w_new - w|| <= tolerance(k)``; it converges
      wherever the inner update itself contracts, with no step to choose and no
      Hessian that must be positive definite.

    The three give the same hypergradient at an exact stationary point. The result does
    not depend on the path to ``y_T``, so it is defined for dynamics that converge to a
    stationary point: SGD and Momentum (Adam's constant-step iterates hover around it);
    a learned step size and an MT-net mask (which changes the fixed point) are refused.
    On the ``Proximal`` lower strategy this is iMAML (see ``BOMLInnerGradProximal``).

    References:
        Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016.
        Lorraine, Vicol and Duvenaud, "Optimizing Millions of Hyperparameters by Implicit
        Differentiation", AISTATS 2020. Grazzi et al., "On the Iteration Complexity of
        Hypergradient Computation", ICML 2020.
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
        advice = {"cg": f"Raise cg_max_iter (now {self.config.cg_max_iter}), loosen the tolerance, or add "
                        f"cg_damping > 0 (now {self.config.cg_damping}) to solve (H + cg_damping I) q = grad F",
                  "fixed_point": f"Raise fixed_point_max_iter (now {self.config.fixed_point_max_iter}), loosen the "
                                 f"tolerance, or run more inner steps T so that y_T is nearer the fixed point (the "
                                 f"iteration converges only where the inner update contracts)"}.get(self.solver, "")
        self.monitor = SolverMonitor(f"Implicit (solver={self.solver!r})", self.config.solver_failure,
                                     advice + "; solver_failure='ignore' silences this.")

    @property
    def solver(self):
        return self.config.solver

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

    def after_run(self, global_step):
        """Reports the solves of the meta-iteration just run (see ``solver_failure``).

        Raises:
            SolverError: ``solver_failure="raise"`` and a solve failed.
        """
        self.monitor.report(global_step)

    def task_hypergradients(self, dynamics):
        trajectory = dynamics.unroll(differentiable=False)
        if self.solver == "fixed_point":
            return self._fixed_point_hypergradients(dynamics, trajectory)
        solution = [tf.stop_gradient(y) for y in trajectory.final]
        residual = dynamics.residual(solution)
        outer_grads = dynamics.gradient(dynamics.outer_value(solution), solution)

        def hessian_vector(p):
            point = [tf.identity(y) for y in solution]
            hvp = tf.gradients(dynamics.residual(point), point, grad_ys=p)
            return [(tf.zeros_like(v) if h is None else h) + self.cg_damping * v for h, v in zip(hvp, p)]

        if self.solver == "cg":
            result = solve_cg(hessian_vector, outer_grads, self.tolerance_placeholder, self.cg_max_iter)
        else:
            alpha = self.config.neumann_alpha
            alphas = (dynamics.hyperparameters.learning_rates if alpha is None
                      else [tf.constant(alpha, y.dtype) for y in solution])
            result = neumann_series(hessian_vector, outer_grads, alphas, self.config.neumann_terms)
        q = [tf.stop_gradient(v) for v in self.monitor.watch(result)]
        direct = tf.gradients(dynamics.outer_value(solution), dynamics.meta_locals)
        mixed = tf.gradients(-_dot(residual, q), dynamics.meta_locals)
        return add_gradients(direct, mixed), solution

    def _fixed_point_hypergradients(self, dynamics, trajectory):
        solution = [tf.stop_gradient(y) for y in trajectory.final]
        slots = [tf.stop_gradient(s) for s in trajectory.slots]
        n, last = len(solution), dynamics.T

        def update(state, state_slots):
            direction = dynamics.direction(last, state)
            new_state, new_slots = dynamics.apply_direction(last, state, state_slots, direction, stop_direction=False)
            return list(new_state) + list(new_slots)

        def jacobian_transpose(w):
            point = [tf.identity(v) for v in solution + slots]
            return _zeros_for_none(tf.gradients(update(point[:n], point[n:]), point, grad_ys=w), point)

        outer = dynamics.outer_value(solution)
        rhs = dynamics.gradient(outer, solution) + [tf.zeros_like(s) for s in slots]
        result = fixed_point_iteration(jacobian_transpose, rhs, self.tolerance_placeholder,
                                       self.config.fixed_point_max_iter)
        w = [tf.stop_gradient(v) for v in self.monitor.watch(result)]
        direct = tf.gradients(outer, dynamics.meta_locals)
        mixed = tf.gradients(_dot(update(solution, slots), w), dynamics.meta_locals)
        return add_gradients(direct, mixed), solution
