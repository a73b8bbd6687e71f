"""Small float64 bilevel problems with numpy references, shared by the hypergradient tests.

The hyper-representation toy: meta-parameter ``W`` (p x k), task state ``y`` (k),

    f(y, W) = 1/2 ||X W y - b||^2 + rho/2 ||y||^2          (inner, support set)
    F(y, W) = 1/2 ||Xq W y - bq||^2                        (outer, query set)

The numpy functions below unroll the same dynamics independently of TensorFlow.
"""
import numpy as np
import tensorflow.compat.v1 as tf

import boml
from boml import extension

RHO = 0.3


def make_data(seed=0, n=8, m=7, p=4, k=3):
    rng = np.random.RandomState(seed)
    return {
        "X": 0.4 * rng.randn(n, p), "b": rng.randn(n), "Xq": 0.4 * rng.randn(m, p), "bq": rng.randn(m),
        "W": rng.randn(p, k) * 0.7, "k": k,
    }


def grad_inner(y, W, d):
    A = d["X"] @ W
    return A.T @ (A @ y - d["b"]) + RHO * y


def grad_outer(y, W, d):
    A = d["Xq"] @ W
    return A.T @ (A @ y - d["bq"])


def outer_value(y, W, d):
    return 0.5 * np.sum((d["Xq"] @ W @ y - d["bq"]) ** 2)


def optimizer_step(name, y, g, slots, step, lr, momentum=0.5, b1=0.9, b2=0.999, eps=1e-8):
    if name == "SGD":
        return y - lr * g, slots
    if name == "Momentum":
        m = momentum * slots[0] + g
        return y - lr * m, [m]
    m = b1 * slots[0] + (1 - b1) * g
    v = b2 * slots[1] + (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
    return y - lr_t * m / (np.sqrt(v) + eps), [m, v]


def unroll(W, d, T, lr, optimizer="SGD", alpha=0.0, s=1.0, t=1.0, start=None, start_step=1, y0=None):
    """y_T of the numpy dynamics; ``alpha`` scalar (a/k) or vector (|alpha_k|) gives BDA."""
    y = np.zeros(d["k"]) if y0 is None else np.array(y0, dtype=float)
    slots = [np.zeros_like(y), np.zeros_like(y)] if optimizer == "Adam" else [np.zeros_like(y)]
    if start is not None:
        y, slots = start
    for step in range(start_step, T + 1):
        a_k = abs(np.ravel(alpha)[step - 1]) if np.ndim(alpha) else alpha / step
        direction = (1 - a_k) * t * grad_inner(y, W, d) + a_k * s * grad_outer(y, W, d)
        y, slots = optimizer_step(optimizer, y, direction, slots, step, lr)
    return y, slots


def central_difference(func, x0, h=1e-5):
    """Central finite-difference gradient of a scalar numpy function."""
    x0 = np.array(x0, dtype=float)
    grad = np.zeros_like(x0)
    for index in np.ndindex(*x0.shape):
        plus, minus = x0.copy(), x0.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = (func(plus) - func(minus)) / (2 * h)
    return grad


def relative_error(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


def build_toy(d, inner_method="Trad", outer_method="Reverse", T=5, lr=0.1, optimizer="SGD", truncate_iter=-1,
              alpha=0.0, learn_alpha=False, learn_alpha_itr=False, learn_st=False, s=1.0, t=1.0, learn_lr=False,
              **ul_kwargs):
    """Builds the toy through ``BOMLOptimizer``; returns (optimizer, W variable, hypergradient pairs)."""
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    Xq, bq = tf.constant(d["Xq"]), tf.constant(d["bq"])
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
    inner = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b)) + \
        0.5 * RHO * tf.reduce_sum(tf.square(y))
    outer = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(Xq, W), y) - bq))
    boml_ho = boml.BOMLOptimizer("MetaFeat", inner_method, outer_method, truncate_iter=truncate_iter)
    inner_grad = boml_ho.ll_problem(inner, lr, T, var_list=[y], inner_objective_optimizer=optimizer,
                                    outer_objective=outer, alpha_init=alpha, learn_alpha=learn_alpha,
                                    learn_alpha_itr=learn_alpha_itr, learn_st=learn_st, s=s, t=t,
                                    learn_lr=learn_lr, lr_granularity="scalar")
    meta = [W] + [v for v in tf.get_collection(extension.GraphKeys.METAPARAMETERS) if v is not W]
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=meta, **ul_kwargs)
    pairs = boml_ho.outergradient.outer_grads_and_vars()
    return boml_ho, inner_grad, pairs


# --------------------------------------------------------------------------- MAML toy
def make_maml_data(seed=0, n=6, m=5, p=4):
    rng = np.random.RandomState(seed)
    return {"X": 0.6 * rng.randn(n, p), "b": 0.5 * rng.randn(n), "Xq": 0.6 * rng.randn(m, p),
            "bq": 0.5 * rng.randn(m), "x": rng.randn(p) * 0.5}


def maml_grad(theta, X, b):
    h = np.tanh(X @ theta)
    return X.T @ ((h - b) * (1 - h * h))


def maml_loss(theta, X, b):
    return 0.5 * np.sum((np.tanh(X @ theta) - b) ** 2)


def maml_unroll(x, d, T, lr, first_order=False):
    """theta_T and the gradients used; ``lr`` scalar or per-element."""
    theta, grads = np.array(x, dtype=float), []
    for _ in range(T):
        g = maml_grad(theta, d["X"], d["b"])
        grads.append(g)
        theta = theta - lr * g
    return theta, grads


def build_maml_toy(d, T=3, lr=0.2, first_order=False, learn_lr=False, lr_granularity="element",
                   optimizer="SGD", outer_method="Simple", ul_options=None, **ll_kwargs):
    """MAML through BOMLOptimizer on the tanh-regression toy (``ul_options``: keywords of ``ul_problem``)."""
    x = extension.get_outerparameter("x", d["x"])
    theta = tf.get_variable("theta", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)

    def loss(X, b):
        return 0.5 * tf.reduce_sum(tf.square(tf.tanh(tf.linalg.matvec(tf.constant(X), theta)) - tf.constant(b)))

    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", outer_method)
    inner_grad = boml_ho.ll_problem(loss(d["X"], d["b"]), lr, T, var_list=[theta], initial_state=[x],
                                    first_order=first_order,
                                    learn_lr=learn_lr, lr_granularity=lr_granularity,
                                    inner_objective_optimizer=optimizer, **ll_kwargs)
    boml_ho.ul_problem(loss(d["Xq"], d["bq"]), 1e-3, inner_grad,
                       meta_param=tf.get_collection(extension.GraphKeys.METAPARAMETERS), **(ul_options or {}))
    return boml_ho, boml_ho.outergradient.outer_grads_and_vars()


# ------------------------------------------------------------- hyper-representation toy, more meta-parameters
def build_toy_with_start(d, outer_method="Reverse", T=5, lr=0.1, optimizer="SGD", learn_lr=False,
                         lr_granularity="scalar", first_order=False, **ul_kwargs):
    """The hyper-representation toy whose lower dynamics also start from a meta-parameter.

    Meta-parameters: ``W``, ``y_start`` (the state y_0, via ``initial_state``) and,
    with ``learn_lr``, the inner step size. The numpy reference is
    ``unroll(W, d, T, lr, optimizer, y0=y_start)`` with ``d["y0"]`` as y_start.

    Returns:
        (optimizer, inner strategy, hypergradient pairs).
    """
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    Xq, bq = tf.constant(d["Xq"]), tf.constant(d["bq"])
    W = extension.get_outerparameter("W", d["W"])
    y_start = extension.get_outerparameter("y_start", d["y0"])
    y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
    inner = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b)) + \
        0.5 * RHO * tf.reduce_sum(tf.square(y))
    outer = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(Xq, W), y) - bq))
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", outer_method)
    inner_grad = boml_ho.ll_problem(inner, lr, T, var_list=[y], initial_state=[y_start],
                                    inner_objective_optimizer=optimizer,
                                    learn_lr=learn_lr, lr_granularity=lr_granularity, first_order=first_order)
    meta = [W, y_start] + [v for v in tf.get_collection(extension.GraphKeys.METAPARAMETERS)
                           if v is not W and v is not y_start]
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=meta, **ul_kwargs)
    pairs = boml_ho.outergradient.outer_grads_and_vars()
    return boml_ho, inner_grad, pairs


# ------------------------------------------------------------- hyper-representation toy, non-quadratic inner
# f(y, W) = sum_i log cosh((X W y - b)_i) + rho/2 ||y||^2: grad_W f = X^T tanh(X W y - b) y^T is not
# linear in y, so a central difference of it along y has a nonzero O(h^2) error (unlike the quadratic toy).
def logcosh_grad_inner(y, W, d):
    A = d["X"] @ W
    return A.T @ np.tanh(A @ y - d["b"]) + RHO * y


def logcosh_unroll(W, d, T, lr):
    """y_T of plain gradient descent on the log-cosh inner objective, from y_0 = 0."""
    y = np.zeros(d["k"])
    for _ in range(T):
        y = y - lr * logcosh_grad_inner(y, W, d)
    return y


def logcosh_one_step(W, d, w, lr):
    """F(y_T(W), W) with the last step y_T = w - lr grad_y f(w, W) from a frozen w = y_{T-1}."""
    return outer_value(w - lr * logcosh_grad_inner(w, W, d), W, d)


def build_logcosh_toy(d, outer_method="Reverse", T=3, lr=0.1, **ul_kwargs):
    """The log-cosh toy through ``BOMLOptimizer``; returns the hypergradient pairs."""
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    Xq, bq = tf.constant(d["Xq"]), tf.constant(d["bq"])
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
    inner = tf.reduce_sum(tf.math.log(tf.cosh(tf.linalg.matvec(tf.matmul(X, W), y) - b))) + \
        0.5 * RHO * tf.reduce_sum(tf.square(y))
    outer = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(Xq, W), y) - bq))
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", outer_method)
    inner_grad = boml_ho.ll_problem(inner, lr, T, var_list=[y])
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=[W], **ul_kwargs)
    return boml_ho.outergradient.outer_grads_and_vars()


def tanh_meta_feat_model(boml_ho, ex, dtype=np.float64, classes=3):
    """A MetaFeat model on 6x6 images: tanh features ``tanh(x W)`` (W an outer parameter) and a linear head.

    Returns:
        ``(W, inner objective, query logits)``; ``ex.model`` is set.
    """
    W = extension.get_outerparameter("W", (np.random.RandomState(0).randn(36, 5) * 0.3).astype(dtype))

    def features(x):
        return tf.tanh(tf.matmul(tf.reshape(x, [-1, 36]), W))

    boml_ho.set_output_dim(classes)
    ex.model = boml_ho.base_learner(features(ex.x), None)
    return W, boml.utils.cross_entropy(ex.model.out, ex.y), ex.model.re_forward(features(ex.x_)).out
