"""Forward-mode hypergradient (``outer_method="Forward"``).

The tangents of the lower-level dynamics are propagated alongside the dynamics
themselves, so the memory does not grow with the number of inner steps T (the
reverse mode keeps the whole trajectory). The price is one Jacobian-vector
product per hyperparameter component and per step: forward mode is the right
choice when there are few hyperparameters (a learning rate, a regularization
strength, BDA's ``alpha``/``s``/``t``), reverse mode when there are many.
"""
import dataclasses

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions

__all__ = ["BOMLOuterGradForward", "ForwardOptions", "batched_jvp", "DEFAULT_FORWARD_MAX_DIM"]

#: Default cap on the total number of scalar hyperparameters handled by ``Forward``.
DEFAULT_FORWARD_MAX_DIM = 1000


def batched_jvp(outputs, inputs, tangents, num_directions):
    """Jacobian-vector products of ``outputs`` along a batch of input directions.

    For every direction ``j < num_directions`` this returns
    ``sum_i d outputs / d inputs[i] . tangents[i][j]``. Each product is obtained
    with the double-gradient trick: with a dummy cotangent ``u`` (zeros shaped
    like the outputs), ``g(u) = u^T J`` is a vector-Jacobian product, linear in
    ``u``, and the gradient of ``<g(u), v>`` with respect to ``u`` is ``J v``.
    The second gradient is vectorized over the directions with
    ``tf.vectorized_map`` (one batched graph, not one copy per direction).

    Args:
        outputs: list of floating tensors.
        inputs: list of tensors the outputs depend on.
        tangents: list aligned with ``inputs``: for each input a tensor of shape
            ``[num_directions] + input.shape``, or None for a zero tangent.
        num_directions: python int, the number of directions.

    Returns:
        A list aligned with ``outputs``, each of shape
        ``[num_directions] + output.shape`` (zeros where the output does not
        depend on any input with a nonzero tangent).
    """
    outputs = [tf.convert_to_tensor(o) for o in outputs]
    if not outputs:
        return []

    def batched_shape(o):
        if o.shape.is_fully_defined():
            return [num_directions] + o.shape.as_list()
        return tf.concat([[num_directions], tf.shape(o)], 0)

    def zeros():
        return [tf.zeros(batched_shape(o), o.dtype) for o in outputs]

    if num_directions == 0:
        return zeros()
    cotangents = [tf.zeros_like(o) for o in outputs]
    vjps = tf.gradients(outputs, list(inputs), grad_ys=cotangents)
    used = [(g, t) for g, t in zip(vjps, tangents) if g is not None and t is not None]
    if not used:
        return zeros()
    products = [g for g, _ in used]

    def one_direction(directions):
        jvps = tf.gradients(products, cotangents, grad_ys=list(directions))
        return [tf.zeros_like(o) if j is None else j for j, o in zip(jvps, outputs)]

    results = tf.vectorized_map(one_direction, [t for _, t in used], fallback_to_while_loop=True, warn=False)
    return [tf.reshape(r, batched_shape(o)) for r, o in zip(results, outputs)]


def _static_size(tensor):
    shape = tensor.shape
    if not shape.is_fully_defined():
        raise InvalidArgumentError(
            f"outer_method='Forward' needs meta-parameters of fully known shape; {tensor.name} has shape {shape}. "
            f"Create the meta-parameter with a static shape, or use outer_method='Reverse'."
        )
    return int(np.prod(shape.as_list(), dtype=np.int64))


@extension.register_upper_iter("Forward")
class BOMLOuterGradForward(BOMLOuterGrad):
    """Forward-mode hypergradient: the tangents ``dy_t/dx`` travel with the dynamics.

    With the lower dynamics written as ``(y_t, s_t) = Phi_t(y_{t-1}, s_{t-1}, x)``
    (state ``y``, optimizer slots ``s``; ``Phi_t`` is the lower strategy's
    ``direction`` fed to the inner optimizer's ``step``), the tangents
    ``Z_t = d(y_t, s_t)/dx`` follow the recursion (Franceschi et al., 2017, eq. 11)::

        Z_0 = d(y_0, s_0)/dx
        Z_t = A_t Z_{t-1} + B_t,   A_t = dPhi_t/d(y, s),   B_t = dPhi_t/dx

    and the hypergradient is::

        dF/dx = grad_x F(x, y_T) + grad_y F(x, y_T)^T Z_T.

    ``A_t Z_{t-1} + B_t`` is, for each scalar component ``x_j`` of the
    meta-parameters, one Jacobian-vector product of the transition along
    ``(Z_{t-1}[j], e_j)``; all ``D`` components are computed in one vectorized
    product per step (see ``batched_jvp``). The carry of the ``tf.while_loop``
    holds ``y``, ``s`` and the ``D`` tangents: memory is independent of T and
    linear in ``D``, time is linear in ``T * D``. Up to rounding the result
    equals ``Reverse`` (full back-propagation, same T).

    Meta-parameters that influence neither the dynamics nor ``F`` get no
    hypergradient (``DetachedOuterParameterError``, as with ``Reverse``); those
    that enter only ``F`` directly cost no tangent.

    Args:
        inner_method: name of the lower strategy (kept for compatibility).
        truncate_iter: must stay -1 (forward mode does not truncate).
        forward_max_dim: largest total number of scalar hyperparameters
            (default 1000); beyond it the tangents become expensive and
            ``Reverse`` is the better choice.
        parallel_iterations: tasks of a batched experiment processed concurrently.

    Raises:
        InvalidArgumentError: ``forward_max_dim`` is not a positive integer; or,
            when the hypergradients are built, the meta-parameters have more
            than ``forward_max_dim`` scalar components or a partly unknown shape.

    References:
        Franceschi, Donini, Frasconi and Pontil, "Forward and Reverse
        Gradient-Based Hyperparameter Optimization", ICML 2017.
        Williams and Zipser, "A learning algorithm for continually running fully
        recurrent neural networks", Neural Computation, 1989 (RTRL).
    """

    Options = None  # set below (ForwardOptions)
    inner_methods = ("Trad", "Aggr")

    @property
    def forward_max_dim(self):
        return int(self.config.forward_max_dim)

    # ------------------------------------------------------------------------------ build
    def task_hypergradients(self, dynamics):
        meta_locals = dynamics.meta_locals
        initial = dynamics.initial_state()
        initial_slots = dynamics.initial_slots(initial)
        n, m = len(initial), len(initial_slots)
        transition = dynamics.step

        active = self._active_parameters(dynamics, transition, initial, initial_slots)
        sizes = [_static_size(meta_locals[k]) for k in active]
        dim = int(sum(sizes))
        self._check_dimension(dynamics, active, sizes)

        with tf.name_scope("tangents"):
            seeds = self._identity_tangents([meta_locals[k] for k in active], sizes, dim)
            active_locals = [meta_locals[k] for k in active]
            tangents0 = batched_jvp(initial + initial_slots, active_locals, seeds, dim)

        def cond(step, *_):
            return step <= dynamics.T

        def body(step, *flat):
            state, slots = list(flat[:n]), list(flat[n:n + m])
            tangents = list(flat[n + m:])
            new_state, new_slots = transition(step, state, slots)
            new_tangents = batched_jvp(new_state + new_slots, state + slots + active_locals,
                                       tangents + seeds, dim)
            return [step + 1] + new_state + new_slots + new_tangents

        loop_vars = [tf.constant(1)] + initial + initial_slots + tangents0
        result = tf.while_loop(cond, body, loop_vars, maximum_iterations=dynamics.T, name="forward_dynamics")
        final = [tf.stop_gradient(v) for v in result[1:1 + n]]
        final_tangents = [tf.stop_gradient(z) for z in result[1 + n + m:1 + n + m + n]]

        outer = dynamics.outer_value(final)
        direct = tf.gradients(outer, meta_locals)
        grads = list(direct)
        if dim:
            state_grads = tf.gradients(outer, final)
            terms = [tf.linalg.matvec(tf.reshape(z, [dim, -1]), tf.reshape(g, [-1]))
                     for z, g in zip(final_tangents, state_grads) if g is not None]
            if terms:
                through_dynamics = tf.add_n([tf.cast(term, terms[0].dtype) for term in terms])
                offset = 0
                for k, size in zip(active, sizes):
                    local = meta_locals[k]
                    piece = tf.reshape(through_dynamics[offset:offset + size], local.shape)
                    piece = tf.cast(piece, local.dtype.base_dtype)
                    grads[k] = piece if grads[k] is None else grads[k] + piece
                    offset += size
        return grads, final

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _active_parameters(dynamics, transition, initial, initial_slots):
        """Indices of the meta-parameters that influence the dynamics (need a tangent).

        The dependence structure is the same at every step, so it is read off one
        transition built outside the loop (never executed).
        """
        with tf.name_scope("dependence_probe"):
            state = [tf.identity(v) for v in initial]
            slots = [tf.identity(s) for s in initial_slots]
            new_state, new_slots = transition(tf.constant(1), state, slots)
            outputs = [o for o in new_state + new_slots + initial + initial_slots
                       if o.dtype.is_floating or o.dtype.is_complex]
            grads = tf.gradients(outputs, dynamics.meta_locals) if outputs else [None] * len(dynamics.meta_locals)
        return [k for k, g in enumerate(grads) if g is not None]

    def _check_dimension(self, dynamics, active, sizes):
        dim = int(sum(sizes))
        if dim > self.forward_max_dim:
            listing = ", ".join(f"{dynamics.meta_params[k].name} ({size})" for k, size in zip(active, sizes))
            raise InvalidArgumentError(
                f"outer_method='Forward' propagates one tangent per scalar hyperparameter; the meta-parameters "
                f"that drive the lower dynamics have {dim} components in total ({listing}), more than "
                f"forward_max_dim={self.forward_max_dim}. Use outer_method='Reverse' for many hyperparameters, or "
                f"raise the limit with ul_problem(..., forward_max_dim={dim}) (time and memory grow linearly "
                f"with it)."
            )

    @staticmethod
    def _identity_tangents(params, sizes, dim):
        """``d x / d x_j`` for each meta-parameter: slices of the ``dim x dim`` identity."""
        seeds = []
        offset = 0
        for param, size in zip(params, sizes):
            dtype = param.dtype.base_dtype
            columns = tf.one_hot(tf.range(offset, offset + size), dim, dtype=dtype)  # [size, dim]
            seeds.append(tf.reshape(tf.transpose(columns), [dim] + param.shape.as_list()))
            offset += size
        return seeds


@dataclasses.dataclass(frozen=True)
class ForwardOptions(UpperOptions):
    """Options of ``Forward``.

    Attributes:
        forward_max_dim: largest total number of scalar hyperparameters (default 1000).
    """

    forward_max_dim: int = DEFAULT_FORWARD_MAX_DIM

    def validate(self, owner):
        super().validate(owner)
        value = self.forward_max_dim
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(
                f"forward_max_dim must be a positive integer; received {value!r}. The default is "
                f"{DEFAULT_FORWARD_MAX_DIM}."
            )


BOMLOuterGradForward.Options = ForwardOptions
