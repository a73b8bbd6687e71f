"""Reverse-mode hypergradient through the lower-level dynamics (RHG, TRHG)."""
from boml import extension
from boml.upper_iter.outer_grad import BOMLOuterGrad, RecomputeOptions


@extension.register_upper_iter("Reverse")
class BOMLOuterGradReverse(BOMLOuterGrad):
    """RHG: the exact gradient of ``F(x, y_T(x))`` through the T-step dynamics.

    With ``(y_t, s_t) = Phi_t(y_{t-1}, s_{t-1}; x)`` (``dynamics.step``), Lagrange
    multipliers ``a_T = dF/dy_T`` and ``a_t = a_{t+1} dPhi_t/dy_t``::

        dF/dx = dF/dx|_direct + sum_t a_{t+1} dPhi_t/dx

    TensorFlow's reverse pass over the ``tf.while_loop`` of ``dynamics.unroll``
    computes exactly this sum (the states are kept on the forward pass). With
    ``truncate_iter=K`` only the last K transitions are back-propagated (TRHG);
    ``K >= T`` is the full RHG, ``K = 0`` keeps only the direct term. Any inner
    optimizer, learned step size and MT-net mask. ``recompute_every`` (gradient
    checkpointing, ``RecomputeOptions``) keeps only every K-th state and recomputes
    the segments on the reverse pass: the same hypergradient in less memory.

    References:
        Franceschi et al., "Forward and Reverse Gradient-Based Hyperparameter
        Optimization", ICML 2017. Shaban et al., "Truncated Back-propagation
        for Bilevel Optimization", AISTATS 2019.
    """

    Options = RecomputeOptions
    inner_methods = ("Trad", "Aggr")
    supports_truncation = True

    def task_hypergradients(self, dynamics):
        return dynamics.reverse_hypergradients(self.truncate_iter, self.config.recompute_every)
