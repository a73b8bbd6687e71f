"""Upper-level strategies: how the hypergradient ``dF/dx`` of a task is computed.

Every strategy builds, for each task, a list of hypergradients aligned with the
meta-parameters, inside one graph. ``BOMLOptimizer.aggregate_all`` averages them
over the tasks of the meta-batch (``outer_grads_and_vars``) and applies the outer
optimizer, so one ``session.run`` performs a whole meta-iteration.
"""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import DetachedOuterParameterError, InvalidArgumentError
from boml.task import map_over_tasks


def _dtype(tensor_or_var):
    return tensor_or_var.dtype.base_dtype


class BOMLOuterGrad:
    """Base class of the upper-level strategies.

    Subclasses implement ``task_hypergradients``.

    Args:
        inner_method: name of the lower strategy (kept for compatibility).
        truncate_iter: only meaningful for strategies that support truncation.
        parallel_iterations: tasks of a batched experiment processed concurrently.
    """

    #: True if the strategy honours ``truncate_iter``.
    supports_truncation = False

    def __init__(self, inner_method=None, truncate_iter=-1, parallel_iterations=1, **config):
        if not isinstance(truncate_iter, int) or isinstance(truncate_iter, bool) or truncate_iter < -1:
            raise InvalidArgumentError(
                f"truncate_iter must be -1 (no truncation) or an integer K >= 0; received {truncate_iter!r}."
            )
        if truncate_iter >= 0 and not self.supports_truncation:
            raise InvalidArgumentError(
                f"truncate_iter={truncate_iter} is only used by outer_method='Reverse' (TRHG); "
                f"{type(self).__name__} does not truncate. Leave truncate_iter=-1 or use Reverse."
            )
        self.inner_method = inner_method
        self.truncate_iter = truncate_iter
        self.parallel_iterations = parallel_iterations
        self.config = dict(config)
        self._records = []

    # --------------------------------------------------------------------------------- build
    def task_hypergradients(self, task, inner_grad, outer_objective):
        """Builds the hypergradients of one task.

        Args:
            task: the ``TaskProgram``.
            inner_grad: the lower strategy (``BOMLInnerGrad``).
            outer_objective: the outer objective tensor (on the task variables).

        Returns:
            ``(hypergradients, outer_value, inner_value)``: a list aligned with
            ``task.meta_params`` (None where the parameter has no influence), the
            outer objective at the adapted state and the inner objective there.
        """
        raise NotImplementedError

    def compute_gradients(self, outer_objective, inner_grad, meta_param=None, param_dict=None):
        """Builds the per-task hypergradients of one experiment (or task group).

        Args:
            outer_objective: scalar tensor ``F`` built on the task variables.
            inner_grad: the object returned by ``ll_problem``.
            meta_param: list of meta-parameters (default: the METAPARAMETERS collection).
            param_dict: unused, kept for compatibility.

        Returns:
            The list of meta-parameters.

        Raises:
            DetachedOuterParameterError: a meta-parameter has no influence on ``F``.
        """
        if meta_param is None:
            meta_param = tf.get_collection(extension.GraphKeys.METAPARAMETERS)
        meta_param = list(meta_param)
        if not meta_param:
            raise InvalidArgumentError(
                "meta_param is empty: there is nothing for the outer problem to learn. Build the meta-learner "
                "first, or pass meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS)."
            )
        objective_dtype = _dtype(outer_objective)

        def task_fn(task):
            grads, outer_value, inner_value = self.task_hypergradients(task, inner_grad, outer_objective)
            detached = [p.name for p, g in zip(meta_param, grads) if g is None]
            if detached:
                raise DetachedOuterParameterError(
                    f"The meta-parameter(s) {detached} have no influence on the outer objective under "
                    f"outer_method={type(self).__name__}. Remove them from meta_param, or make the outer "
                    f"objective depend on them (an Implicit or Darts hypergradient ignores a learned "
                    f"learning rate)."
                )
            return [tf.cast(outer_value, objective_dtype), tf.cast(inner_value, objective_dtype)] + list(grads)

        dtypes = [objective_dtype, objective_dtype] + [_dtype(p) for p in meta_param]
        with tf.name_scope(type(self).__name__):
            outputs = map_over_tasks(inner_grad.experiment, meta_param, inner_grad.var_list, task_fn, dtypes,
                                     self.parallel_iterations, training=True)
        self._records.append({"meta_param": meta_param, "outer_losses": outputs[0], "inner_losses": outputs[1],
                              "hypergradients": outputs[2:]})
        return meta_param

    # --------------------------------------------------------------------------------- aggregate
    @property
    def outer_losses(self):
        """Outer objective of every task (concatenated over experiments)."""
        return tf.concat([r["outer_losses"] for r in self._records], axis=0) if self._records else None

    @property
    def inner_losses(self):
        """Inner objective at the adapted state of every task."""
        return tf.concat([r["inner_losses"] for r in self._records], axis=0) if self._records else None

    def outer_grads_and_vars(self, meta_param=None, aggregation_fn=None, gradient_clip=None):
        """Aggregated ``(hypergradient, meta-parameter)`` pairs.

        Args:
            meta_param: restrict to these parameters (default: all).
            aggregation_fn: maps the stacked per-task hypergradients (task axis
                first) to one tensor; default: the mean over tasks.
            gradient_clip: optional function applied to each aggregated hypergradient.
        """
        aggregation_fn = aggregation_fn or (lambda stacked: tf.reduce_mean(stacked, axis=0))
        per_param = {}
        order = []
        for record in self._records:
            for param, grads in zip(record["meta_param"], record["hypergradients"]):
                if param.ref() not in per_param:
                    per_param[param.ref()] = []
                    order.append(param)
                per_param[param.ref()].append(grads)
        wanted = None if meta_param is None else {p.ref() for p in meta_param}
        pairs = []
        for param in order:
            if wanted is not None and param.ref() not in wanted:
                continue
            stacked = tf.concat(per_param[param.ref()], axis=0)
            grad = aggregation_fn(stacked)
            if gradient_clip is not None:
                grad = gradient_clip(grad)
            tf.add_to_collection(extension.GraphKeys.OUTERGRADIENTS, grad)
            pairs.append((grad, param))
        return pairs

    def apply_gradients(self, inner_objective_feed_dicts=None, outer_objective_feed_dicts=None,
                        initializer_feed_dict=None, param_dict=None, session=None, global_step=None):
        """Kept for compatibility: boml computes hypergradients inside the meta-update run."""
        return None


def gradients_or_none(ys, xs, grad_ys=None):
    """``tf.gradients`` that returns an empty list for an empty ``xs``."""
    return tf.gradients(ys, xs, grad_ys=grad_ys) if xs else []


def add_gradients(first, second):
    """Elementwise sum of two gradient lists where None means zero."""
    return [a if b is None else b if a is None else a + b for a, b in zip(first, second)]
