"""Scripts written the way the original BOML's ``test_script`` drivers were, run on boml.

    python examples/original_style.py meta_init --data_folder ../shared/data/omniglot_resized --iterations 500
    python examples/original_style.py meta_feat --data_folder ../shared/data/omniglot_resized --iterations 500

``meta_init`` follows the original ``test_meta_init.py`` (MetaInit / Simple / Simple: MAML),
``meta_feat`` follows ``test_meta_feat.py`` (MetaFeat / Trad / Reverse: RHG; ``--truncate_iter K``
gives TRHG). As in the original, one ``BOMLExperiment`` is built per task of the meta-batch (no
``meta_batch_size``), every task gets its own base learner, ``ll_problem`` and ``ul_problem``,
the episodes come from ``BatchQueueMock`` and are fed with ``boml.utils.feed_dicts``.

After training, the query accuracy of the same test episodes is measured in up to three ways:

* ``plain`` (``meta_init`` only): a plain ``session.run`` of the accuracy tensor built from
  ``ex.model.re_forward(ex.x_).out`` after ``ll_problem`` with the episode's support + query feed
  (in the original the fast weights are graph tensors of the support feed, so this is the
  accuracy after adaptation);
* ``protocol``: the original evaluation protocol: ``session.run(boml_ho.outergradient.initialization)``
  resets the task variables, ``T`` steps of a plain ``BOMLOptSGD(lr).minimize`` op on the support
  loss adapt them, then the accuracy of the task network is read with the query set fed through
  ``ex.x``;
* ``adapted``: boml's own ``BOMLOptimizer.adapted`` evaluation.

The modes must agree and be well above chance (1 / classes). For ``meta_feat`` one more original
behaviour is checked (``after_run``): after ``boml_ho.run`` the task variables hold the adapted
state of the episode just run (for MetaFeat the ``re_forward`` tensors are functions of those
variables, so a plain ``session.run`` reads whatever they hold). ``main`` returns the per-episode
accuracies of every mode; a mode the installed boml cannot run is reported with its error.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402
from boml import utils  # noqa: E402
from boml.extension import GraphKeys  # noqa: E402

MODES = {"meta_init": ("plain", "protocol", "adapted"), "meta_feat": ("protocol", "adapted")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("driver", choices=("meta_init", "meta_feat"))
    parser.add_argument("--data_folder", default=None, help="omniglot_resized folder (default: $DATASETS_FOLDER)")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--examples_train", type=int, default=1)
    parser.add_argument("--examples_test", type=int, default=15)
    parser.add_argument("--meta_batch_size", type=int, default=4, help="tasks (experiments) per meta-update")
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--T", type=int, default=None, help="inner steps (default 1 meta_init, 5 meta_feat)")
    parser.add_argument("--lr", type=float, default=None, help="inner lr (default 0.4 meta_init, 0.1 meta_feat)")
    parser.add_argument("--meta_lr", type=float, default=1e-3)
    parser.add_argument("--meta_lr_decay_rate", type=float, default=1e-5)
    parser.add_argument("--clip_value", type=float, default=0.0, help="> 0: clip hypergradients by value")
    parser.add_argument("--truncate_iter", type=int, default=-1, help="meta_feat: TRHG K (-1: full RHG)")
    parser.add_argument("--num_filters", type=int, default=64)
    parser.add_argument("--test_episodes", type=int, default=100)
    parser.add_argument("--print_interval", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.T is None:
        args.T = 1 if args.driver == "meta_init" else 5
    if args.lr is None:
        args.lr = 0.4 if args.driver == "meta_init" else 0.1
    return args


# ---------------------------------------------------------------------------------------------------- graphs
def _clip_fn(clip_value):
    if clip_value > 0:
        return lambda grad: tf.clip_by_value(grad, -clip_value, clip_value)
    return None


def _evaluation_ops(ex, lr):
    """The original's per-task evaluation objects, built on the base learner before ``ll_problem``."""
    ex.errors["training"] = utils.cross_entropy(pred=ex.model.out, label=ex.y)
    ex.scores["accuracy"] = utils.classification_acc(ex.model.out, ex.y)
    ex.optimizers["apply_updates"], _ = boml.BOMLOptSGD(learning_rate=lr).minimize(
        ex.errors["training"], var_list=ex.model.var_list)


def build_meta_init(metasets, args):
    """``test_meta_init.py``'s graph: MAML with one experiment per task."""
    exs = [boml.BOMLExperiment(metasets) for _ in range(args.meta_batch_size)]
    boml_ho = boml.BOMLOptimizer(method="MetaInit", inner_method="Simple", outer_method="Simple")
    meta_model = boml_ho.meta_learner(_input=exs[0].x, dataset=metasets, meta_model="V1", name="HyperRepr",
                                      dim_hidden=[args.num_filters] * 4)
    inner_grads, adapted_scores = [], []
    for k, ex in enumerate(exs):
        ex.model = boml_ho.base_learner(_input=ex.x, meta_learner=meta_model, name=f"Task_Net_{k}")
        _evaluation_ops(ex, args.lr)
        # boml's own evaluation: the query accuracy of the task network, after the training dynamics.
        query_accuracy = utils.classification_acc(ex.model.re_forward(ex.x_).out, ex.y_)
        inner_grad = boml_ho.ll_problem(inner_objective=ex.errors["training"], learning_rate=args.lr, T=args.T,
                                        experiment=ex, var_list=ex.model.var_list)
        query_out = ex.model.re_forward(ex.x_).out  # after ll_problem: the adapted network in the original
        ex.errors["validation"] = utils.cross_entropy(pred=query_out, label=ex.y_)
        ex.scores["query_accuracy"] = utils.classification_acc(query_out, ex.y_)
        boml_ho.ul_problem(outer_objective=ex.errors["validation"], meta_learning_rate=args.meta_lr,
                           inner_grad=inner_grad, meta_param=tf.get_collection(GraphKeys.METAPARAMETERS))
        inner_grads.append(inner_grad)
        adapted_scores.append(query_accuracy)
    boml_ho.aggregate_all(gradient_clip=_clip_fn(args.clip_value))
    adapted = [boml_ho.adapted(score, inner_grad) for score, inner_grad in zip(adapted_scores, inner_grads)]
    return exs, boml_ho, adapted


def build_meta_feat(metasets, args):
    """``test_meta_feat.py``'s graph: RHG (TRHG with ``truncate_iter``) with one experiment per task."""
    exs = [boml.BOMLExperiment(metasets) for _ in range(args.meta_batch_size)]
    boml_ho = boml.BOMLOptimizer(method="MetaFeat", inner_method="Trad", outer_method="Reverse",
                                 truncate_iter=args.truncate_iter)
    meta_model = boml_ho.meta_learner(_input=exs[0].x, dataset=metasets, meta_model="V1", name="Reverse",
                                      dim_hidden=[args.num_filters] * 4)
    inner_grads, adapted_scores = [], []
    for k, ex in enumerate(exs):
        repr_out = meta_model.re_forward(ex.x).out
        repr_out_val = meta_model.re_forward(ex.x_).out
        ex.model = boml_ho.base_learner(_input=repr_out, meta_learner=meta_model, name=f"Classifier_{k}",
                                        weights_initializer=tf.zeros_initializer)
        _evaluation_ops(ex, args.lr)
        query_out = ex.model.re_forward(repr_out_val).out
        ex.errors["validation"] = utils.cross_entropy(pred=query_out, label=ex.y_)
        ex.scores["query_accuracy"] = utils.classification_acc(query_out, ex.y_)
        inner_grad = boml_ho.ll_problem(inner_objective=ex.errors["training"], learning_rate=args.lr, T=args.T,
                                        experiment=ex, var_list=ex.model.var_list,
                                        outer_objective=ex.errors["validation"])
        boml_ho.ul_problem(outer_objective=ex.errors["validation"], meta_learning_rate=args.meta_lr,
                           inner_grad=inner_grad, mlr_decay=args.meta_lr_decay_rate,
                           meta_param=tf.get_collection(GraphKeys.METAPARAMETERS))
        inner_grads.append(inner_grad)
        adapted_scores.append(ex.scores["query_accuracy"])
    boml_ho.aggregate_all(gradient_clip=_clip_fn(args.clip_value))
    adapted = [boml_ho.adapted(score, inner_grad) for score, inner_grad in zip(adapted_scores, inner_grads)]
    for ex, inner_grad in zip(exs, inner_grads):  # y_T of the task variables, for the ``after_run`` check
        ex.scores["adapted_state"] = boml_ho.adapted([tf.identity(v) for v in ex.model.var_list], inner_grad)
    return exs, boml_ho, adapted


# ---------------------------------------------------------------------------------------------------- loops
def meta_train(sess, metasets, exs, boml_ho, iterations, seed, print_interval):
    """The original ``meta_train`` loop: one meta-batch of per-task episodes per iteration."""
    train_batches = utils.BatchQueueMock(metasets.train, 1, len(exs), utils.get_rand_state(seed))
    start = time.time()
    for it in range(1, iterations + 1):
        tr_fd, v_fd = utils.feed_dicts(train_batches.get_all_batches()[0], exs)
        losses = boml_ho.run(tr_fd, v_fd, session=sess)
        if it % print_interval == 0 or it == iterations:
            print(f"Iteration {it}: inner loss {losses['inner_loss']:.4f}, outer loss {losses['outer_loss']:.4f} "
                  f"({time.time() - start:.0f}s)", flush=True)


def sample_test_batches(metasets, n_tasks, n_episodes, seed):
    """Fixed test meta-batches (``n_tasks`` episodes each) covering at least ``n_episodes`` episodes."""
    n_batches = max(1, -(-n_episodes // n_tasks))
    batches = utils.BatchQueueMock(metasets.test, n_batches, n_tasks, seed).get_all_batches()
    return [batch if isinstance(batch, list) else [batch] for batch in batches]


def accuracy_plain(sess, exs, batches):
    """Query accuracy of every episode by a plain ``session.run`` of the ``re_forward`` accuracy tensors."""
    values = []
    for batch in batches:
        tr_fd, v_fd = utils.feed_dicts(batch, exs)
        values.extend(sess.run([ex.scores["query_accuracy"] for ex in exs], {**tr_fd, **v_fd}))
    return np.asarray(values, np.float64)


def accuracy_adapted(sess, exs, adapted, batches):
    """Query accuracy of every episode from ``BOMLOptimizer.adapted`` (one value per task)."""
    values = []
    for batch in batches:
        tr_fd, v_fd = utils.feed_dicts(batch, exs)
        values.extend(np.concatenate(sess.run(adapted, {**tr_fd, **v_fd})).tolist())
    return np.asarray(values, np.float64)


def just_train_on_dataset(sess, ex, episode, boml_ho, T):
    """The original evaluation of one episode: reset, ``T`` plain SGD steps on the support set, query accuracy."""
    sess.run(boml_ho.outergradient.initialization)
    tr_fd, _ = utils.feed_dict(episode, ex)
    for _ in range(T):
        sess.run(ex.optimizers["apply_updates"], tr_fd)
    return sess.run(ex.scores["accuracy"], {ex.x: episode.test.data, ex.y: episode.test.target})


def accuracy_protocol(sess, exs, boml_ho, batches, T):
    """Query accuracy of every episode by the original evaluation protocol."""
    return np.asarray([just_train_on_dataset(sess, ex, episode, boml_ho, T)
                       for batch in batches for ex, episode in zip(exs, batch)], np.float64)


def state_after_run(sess, exs, boml_ho, batch):
    """Largest gap between the task variables after ``run`` and the adapted state of the same episodes.

    The adapted state ``y_T`` is computed first (same meta-parameters as the forward pass of ``run``);
    this performs one more meta-iteration.
    """
    tr_fd, v_fd = utils.feed_dicts(batch, exs)
    expected = sess.run([ex.scores["adapted_state"] for ex in exs], {**tr_fd, **v_fd})
    boml_ho.run(tr_fd, v_fd, session=sess)
    held = sess.run([ex.model.var_list for ex in exs])
    return max(float(np.max(np.abs(np.asarray(h) - np.asarray(e)[0])))
               for held_ex, expected_ex in zip(held, expected) for h, e in zip(held_ex, expected_ex))


def evaluate(sess, exs, boml_ho, adapted, batches, T, modes):
    """``{mode: per-episode accuracies, or the error that prevented the mode}`` for every mode."""
    runs = {"plain": lambda: accuracy_plain(sess, exs, batches),
            "protocol": lambda: accuracy_protocol(sess, exs, boml_ho, batches, T),
            "adapted": lambda: accuracy_adapted(sess, exs, adapted, batches),
            "after_run": lambda: state_after_run(sess, exs, boml_ho, batches[0])}
    results = {}
    for mode in modes:
        try:
            results[mode] = runs[mode]()
        except AttributeError as error:  # an original name this boml does not have yet
            results[mode] = error
    return results


def load(args):
    return boml.meta_omniglot(args.data_folder, std_num_classes=args.classes, examples_train=args.examples_train,
                              examples_test=args.examples_test)


def main(argv=None):
    args = parse_args(argv)
    tf.disable_eager_execution()
    metasets = load(args)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(args.seed)
        build = build_meta_init if args.driver == "meta_init" else build_meta_feat
        exs, boml_ho, adapted = build(metasets, args)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            meta_train(sess, metasets, exs, boml_ho, args.iterations, args.seed, args.print_interval)
            batches = sample_test_batches(metasets, len(exs), args.test_episodes, seed=12345)
            modes = MODES[args.driver] + (("after_run",) if args.driver == "meta_feat" else ())
            results = evaluate(sess, exs, boml_ho, adapted, batches, args.T, modes)
    for mode in MODES[args.driver]:
        value = results[mode]
        if isinstance(value, Exception):
            print(f"{mode:>8}: not available in this boml ({value})")
        else:
            mean, _, ci = utils.mean_std_ci(value)
            print(f"{mode:>8}: query accuracy {100 * mean:.2f}% +- {100 * ci:.2f}% ({len(value)} episodes)")
    reference = results["adapted"]
    for mode in MODES[args.driver][:-1]:
        if not isinstance(results[mode], Exception) and not isinstance(reference, Exception):
            print(f"{mode} == adapted on every episode: {bool(np.allclose(results[mode], reference, atol=1e-6))}")
    if "after_run" in results:
        print(f"after run(): largest gap between the task variables and the adapted state: {results['after_run']}")
    print(f"chance: {100 / args.classes:.2f}%")
    return results


if __name__ == "__main__":
    main()
