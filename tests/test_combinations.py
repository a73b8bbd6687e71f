"""Every allowed (method, inner, outer) combination, and the ten configurations of the
original .travis.yml, run two meta-iterations on the synthetic dataset."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml.boml_optimizer import allowed_triples

SMALL_NET = {"dim_hidden": (8, 8)}


def build(method, inner, outer, dataset, batched=True, tasks=2, truncate_iter=-1, use_t=False, use_warp=False,
          T=2, ll=None, ul=None):
    """The README's construction, for a batched experiment or ``tasks`` per-task experiments."""
    ll, ul = dict(ll or {}), dict(ul or {})
    experiments = ([boml.BOMLExperiment(dataset, meta_batch_size=tasks)] if batched
                   else [boml.BOMLExperiment(dataset, name=f"task{k}") for k in range(tasks)])
    boml_ho = boml.BOMLOptimizer(method, inner, outer, truncate_iter=truncate_iter)
    meta_learner = boml_ho.meta_learner(experiments[0].x, dataset, meta_model="V1", use_t=use_t,
                                        use_warp=use_warp, **SMALL_NET)
    for k, ex in enumerate(experiments):
        if method == "MetaInit":
            ex.model = boml_ho.base_learner(ex.x, meta_learner, name=f"task_net_{k}")
            inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
            outer_objective = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
        else:
            features = meta_learner.re_forward(ex.x).out
            ex.model = boml_ho.base_learner(features, meta_learner, name=f"classifier_{k}")
            inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
            query_features = meta_learner.re_forward(ex.x_).out
            outer_objective = boml.utils.cross_entropy(ex.model.re_forward(query_features).out, ex.y_)
        inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=0.1, T=T, experiment=ex,
                                        var_list=ex.model.var_list, outer_objective=outer_objective, **ll)
        boml_ho.ul_problem(outer_objective, meta_learning_rate=0.01, inner_grad=inner_grad,
                           meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS), **ul)
    boml_ho.aggregate_all(gradient_clip=lambda g: tf.clip_by_value(g, -10.0, 10.0))
    return boml_ho, experiments


def run_two_iterations(session, boml_ho, experiments, dataset, batched=True, tasks=2):
    session.run(tf.global_variables_initializer())
    tf.get_default_graph().finalize()  # run() must not add operations
    meta = tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS)
    before = session.run(meta)
    rand = np.random.RandomState(0)
    losses = []
    for _ in range(2):
        episodes = dataset.train.generate_batch(tasks, rand=rand)
        if batched:
            inner_fd, outer_fd = experiments[0].feed_dicts(episodes)
        else:
            inner_fd, outer_fd = boml.utils.feed_dicts(episodes, experiments)
        losses.append(boml_ho.run(inner_fd, outer_fd, session=session))
    after = session.run(meta)
    assert all(np.isfinite(v) for step in losses for v in step.values())
    moved = [not np.allclose(a, b) for a, b in zip(before, after)]
    # A parameter may stay only if its hypergradient vanishes (a conv bias, or its step size,
    # right before batch norm, which removes any per-channel constant).
    grads = dict((v.ref(), g) for g, v in boml_ho.hypergradients)
    still = [p for p, m in zip(meta, moved) if not m]
    if still:
        values = session.run([grads[p.ref()] for p in still], dict(zip(*_feeds(experiments, dataset, batched, tasks))))
        assert all(np.max(np.abs(v)) < 1e-6 for v in values), [p.name for p in still]
    assert session.run(boml_ho.global_step) == 2
    return losses


def _feeds(experiments, dataset, batched, tasks):
    episodes = dataset.train.generate_batch(tasks, rand=np.random.RandomState(5))
    inner, outer = (experiments[0].feed_dicts(episodes) if batched
                    else boml.utils.feed_dicts(episodes, experiments))
    merged = {**inner, **outer}
    return list(merged.keys()), list(merged.values())


@pytest.fixture
def dataset():
    return boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=2, image_shape=(8, 8, 1),
                               n_classes=(6, 2, 2), examples_per_class=6)


@pytest.mark.parametrize("method,inner,outer", allowed_triples())
def test_every_allowed_combination_runs(session, dataset, method, inner, outer):
    boml_ho, experiments = build(method, inner, outer, dataset)
    run_two_iterations(session, boml_ho, experiments, dataset)


TRAVIS = {
    "maml_learn_lr_first_order_t": ("MetaInit", "Simple", "Simple",
                                    {"use_t": True, "ll": {"learn_lr": True, "first_order": True}}),
    "fomaml_warp": ("MetaInit", "Simple", "Simple", {"use_warp": True, "ll": {"first_order": True}}),
    "trhg_adam": ("MetaFeat", "Trad", "Reverse",
                  {"truncate_iter": 1, "ll": {"inner_objective_optimizer": "Adam"},
                   "ul": {"outer_objective_optimizer": "Adam"}}),
    "bda_alpha_itr_st_momentum": ("MetaFeat", "Aggr", "Reverse",
                                  {"ll": {"learn_alpha_itr": True, "learn_st": True, "alpha_init": 0.2,
                                          "inner_objective_optimizer": "Momentum"}}),
    "bda_learn_alpha": ("MetaFeat", "Aggr", "Reverse", {"ll": {"learn_alpha": True, "alpha_init": 0.2}}),
    "darts_aggr": ("MetaFeat", "Aggr", "Darts", {"ll": {"alpha_init": 0.7}}),
    "darts_alpha_itr": ("MetaFeat", "Aggr", "Darts", {"ll": {"learn_alpha_itr": True, "alpha_init": 0.3}}),
    "implicit": ("MetaFeat", "Trad", "Implicit",
                 {"ll": {"inner_objective_optimizer": "SGD"}, "ul": {"outer_objective_optimizer": "Adam"}}),
    "maml_plain": ("MetaInit", "Simple", "Simple", {}),
    "rhg_momentum_outer": ("MetaFeat", "Trad", "Reverse", {"ul": {"outer_objective_optimizer": "Momentum"}}),
}


@pytest.mark.parametrize("name", sorted(TRAVIS))
def test_original_travis_configurations(session, dataset, name):
    method, inner, outer, flags = TRAVIS[name]
    boml_ho, experiments = build(method, inner, outer, dataset, **flags)
    run_two_iterations(session, boml_ho, experiments, dataset)


@pytest.mark.parametrize("method,inner,outer", [("MetaInit", "Simple", "Simple"), ("MetaFeat", "Trad", "Reverse")])
def test_per_task_experiments_match_batched_experiment(dataset, method, inner, outer):
    """The original per-task API and the batched experiment compute the same meta-update."""
    results = []
    for batched in (True, False):
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(1)
            # SGD: Adam would magnify the float32 noise of hypergradients that vanish (biases before BN).
            boml_ho, experiments = build(method, inner, outer, dataset, batched=batched,
                                         ul={"outer_objective_optimizer": "SGD"})
            sess = tf.Session(graph=graph)
            sess.run(tf.global_variables_initializer())
            meta = tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS)
            values = {p.name: sess.run(p) for p in meta}
            results.append((boml_ho, experiments, sess, meta, values))
    # Same initial values in both graphs, then one step each on the same episodes.
    (b_ho, b_ex, b_sess, b_meta, b_init), (p_ho, p_ex, p_sess, p_meta, _) = results
    with p_sess.graph.as_default():
        for p in p_meta:
            p.load(b_init[p.name], p_sess)
    episodes = dataset.train.generate_batch(2, rand=3)
    b_loss = b_ho.run(*b_ex[0].feed_dicts(episodes), session=b_sess)
    p_loss = p_ho.run(*boml.utils.feed_dicts(episodes, p_ex), session=p_sess)
    np.testing.assert_allclose(b_loss["outer_loss"], p_loss["outer_loss"], rtol=1e-5)
    for bp, pp in zip(b_meta, p_meta):
        np.testing.assert_allclose(b_sess.run(bp), p_sess.run(pp), rtol=1e-4, atol=1e-6)
    b_sess.close()
    p_sess.close()
