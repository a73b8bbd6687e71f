"""The graph of a run: the original README's construction for the configured algorithm."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import tensorflow.compat.v1 as tf

from boml import extension, utils
from boml.boml_optimizer import BOMLOptimizer
from boml.load_data import BOMLExperiment
from boml.workflow.config import Config
from boml.workflow.validation import recompute_every, takes_while_loop_threshold

@dataclass
class Model:
    """The graph of a run (built by :func:`build_model`).

    Attributes:
        config: the resolved configuration.
        boml_ho: the ``BOMLOptimizer``.
        experiment: the batched ``BOMLExperiment``.
        inner_grad: the lower strategy returned by ``ll_problem``.
        accuracy: query accuracy of one task (built on the task variables).
        adapted_accuracy, adapted_loss: per-task query accuracy and loss after adapting
            each task with the training dynamics for ``config.eval_T`` steps.
        saver: ``tf.train.Saver`` over the global variables.
        extras: learned scalars shown in the progress lines (mean learned lr, BDA alpha, s, t).
        checked_variables: the floating-point global variables checked before each checkpoint.
        finite_flags: one boolean per ``checked_variables``: the variable holds no NaN or infinity.
    """

    config: Config
    boml_ho: BOMLOptimizer
    experiment: BOMLExperiment
    inner_grad: Any
    accuracy: tf.Tensor
    adapted_accuracy: tf.Tensor
    adapted_loss: tf.Tensor
    saver: tf.train.Saver
    extras: Dict[str, tf.Tensor] = field(default_factory=dict)
    checked_variables: List[tf.Variable] = field(default_factory=list)
    finite_flags: Optional[tf.Tensor] = None

    @property
    def global_step(self):
        """The facade's global step (meta-iterations done)."""
        return self.boml_ho.global_step


def build_model(config: Config, dataset) -> Model:
    """Builds the meta-learning graph of ``config`` in the default graph.

    The construction is the original README's: a meta-learner, a base learner
    per task (the MetaInit task network, or a linear head on the MetaFeat
    features), the inner objective on the support set and the outer one on the
    query set, then ``ll_problem``, ``ul_problem`` and ``aggregate_all``.

    Args:
        config: a configuration (validated here).
        dataset: the ``Datasets`` returned by :func:`load_dataset`.

    Returns:
        The :class:`Model`.
    """
    c = config.validate()
    tf.set_random_seed(c.seed)
    ex = BOMLExperiment(dataset, meta_batch_size=c.meta_batch_size)
    boml_ho = BOMLOptimizer(c.method, c.inner_method, c.outer_method, truncate_iter=c.truncate_iter)
    net_args = {"dim_hidden": (c.num_filters,) * 4} if c.num_filters else {}
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", use_t=c.use_t, use_warp=c.use_warp,
                                        **net_args)
    if c.method == "MetaInit":
        ex.model = boml_ho.base_learner(ex.x, meta_learner, name="task_net")
        query_out = ex.model.re_forward(ex.x_).out
    else:
        head_init = tf.glorot_uniform_initializer if c.xavier else tf.zeros_initializer
        features = meta_learner.re_forward(ex.x).out
        ex.model = boml_ho.base_learner(features, meta_learner, name="classifier", weights_initializer=head_init)
        query_out = ex.model.re_forward(meta_learner.re_forward(ex.x_).out).out
    inner_objective = utils.cross_entropy(ex.model.out, ex.y)
    outer_objective = utils.cross_entropy(query_out, ex.y_)
    accuracy = utils.classification_acc(query_out, ex.y_)
    ex.errors.update(training=inner_objective, validation=outer_objective)
    ex.scores["accuracy"] = accuracy

    ll_options = dict(inner_objective_optimizer=c.inner_opt, outer_objective=outer_objective,
                      learn_lr=c.learn_lr, first_order=c.first_order, momentum=c.momentum,
                      lr_granularity=c.lr_granularity, use_mask=c.use_mask)
    if takes_while_loop_threshold(c.inner_method):
        ll_options.update(while_loop_threshold=c.while_loop_threshold)
    if c.inner_method == "Proximal":
        ll_options.update(proximal_lambda=c.proximal_lambda)
    if c.inner_method == "Aggr":
        ll_options.update(alpha_init=c.alpha, s=c.bda_s, t=c.bda_t, learn_alpha=c.learn_alpha,
                          learn_alpha_itr=c.learn_alpha_itr, learn_st=c.learn_st)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=c.lr, T=c.T, experiment=ex,
                                    var_list=ex.model.var_list, **ll_options)
    boml_ho.ul_problem(outer_objective, meta_learning_rate=c.meta_lr, inner_grad=inner_grad,
                       mlr_decay=c.meta_lr_decay_rate, outer_objective_optimizer=c.outer_opt, momentum=c.momentum,
                       meta_param=tf.get_collection(extension.GraphKeys.METAPARAMETERS),
                       parallel_iterations=c.parallel_iterations, task_memory_budget=c.task_memory_budget,
                       vectorize_tasks="auto" if c.vectorize_tasks is None else c.vectorize_tasks,
                       meta_lr_schedule=c.meta_lr_schedule, **_schedule_options(c), **_upper_options(c))
    clip = (lambda g: tf.clip_by_value(g, -c.clip_value, c.clip_value)) if c.clip_value > 0 else None
    boml_ho.aggregate_all(gradient_clip=clip)
    adapted_accuracy, adapted_loss = boml_ho.adapted([accuracy, outer_objective], inner_grad, T=c.eval_T)
    extras = {}
    learned = boml_ho.param_dict
    if c.learn_lr:
        extras["lr"] = tf.reduce_mean(boml_ho.learning_rate)
    for key in ("alpha", "s", "t"):
        if key in learned and isinstance(learned[key], tf.Variable):
            extras[key] = tf.reduce_mean(learned[key])
    saver = tf.train.Saver(tf.global_variables(), max_to_keep=None)  # the workflow deletes old checkpoints
    checked = [v for v in tf.global_variables() if v.dtype.base_dtype.is_floating]
    finite = tf.stack([tf.reduce_all(tf.is_finite(v)) for v in checked]) if checked else None
    return Model(config=c, boml_ho=boml_ho, experiment=ex, inner_grad=inner_grad, accuracy=accuracy,
                 adapted_accuracy=adapted_accuracy, adapted_loss=adapted_loss, saver=saver, extras=extras,
                 checked_variables=checked, finite_flags=finite)


__all__ = ["Model", "build_model"]


def _upper_options(c):
    """The configuration's settings that belong to the chosen upper strategy only (each refuses the others')."""
    options = {"Forward": {"forward_max_dim": c.forward_max_dim},
               "Implicit": _implicit_options(c),
               "MAML++": {"multi_step_loss": c.multi_step_loss, "msl_anneal_iterations": c.msl_anneal_iterations,
                          "first_order_iterations": c.first_order_iterations, "learn_step_sizes": c.learn_step_sizes,
                          "per_step_bn_weights": c.per_step_bn_weights,
                          "per_step_bn_statistics": c.per_step_bn_statistics,
                          "bn_momentum": c.bn_momentum}}.get(c.outer_method, {})
    recompute = recompute_every(c.recompute_every)
    return options if recompute is None else dict(options, recompute_every=recompute)


def _implicit_options(c):
    """The Implicit settings; the strategy refuses a solver's option set with another solver."""
    return {"solver": c.solver, "cg_max_iter": c.cg_max_iter, "cg_damping": c.cg_damping,
            "neumann_terms": c.neumann_terms, "solver_failure": c.solver_failure}


def _schedule_options(c):
    """The cosine schedule's settings: it anneals over the run's ``meta_train_iterations`` (at least 1)."""
    if c.meta_lr_schedule != "cosine":
        return {}
    return {"meta_lr_min": c.meta_lr_min, "meta_lr_period": max(1, c.meta_train_iterations)}
