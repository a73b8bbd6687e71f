"""RHG hyper-representation (MetaFeat family) on Omniglot, 5-way 1-shot, the way the BOML README teaches.

    python examples/meta_feat_omniglot.py --data_folder ../shared/data/omniglot_resized --iterations 3000

The meta-learner is a convolutional feature extractor shared by all tasks; each
task trains a linear classifier on its features from zero for T steps
(``ll_problem``) and the features are updated with the reverse-mode
hypergradient of the query loss through those steps (``"Reverse"``, RHG). Use
``--truncate_iter K`` for TRHG. Add ``--dataset synthetic`` for a run that needs
no files.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", choices=("omniglot", "synthetic"), default="omniglot")
    parser.add_argument("--data_folder", default=None, help="omniglot_resized folder or .tar.gz")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--examples_train", type=int, default=1)
    parser.add_argument("--examples_test", type=int, default=15)
    parser.add_argument("--meta_batch_size", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--T", type=int, default=5, help="inner steps of the linear classifier")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--meta_lr", type=float, default=1e-3)
    parser.add_argument("--truncate_iter", type=int, default=-1, help="TRHG: last K steps only (-1: all)")
    parser.add_argument("--test_episodes", type=int, default=600)
    parser.add_argument("--print_interval", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load(args):
    if args.dataset == "synthetic":
        return boml.meta_synthetic(num_classes=args.classes, examples_train=args.examples_train,
                                   examples_test=args.examples_test, image_shape=(28, 28, 1))
    return boml.meta_omniglot(args.data_folder, std_num_classes=args.classes, examples_train=args.examples_train,
                              examples_test=args.examples_test, split="vinyals")


def main(argv=None):
    args = parse_args(argv)
    tf.disable_eager_execution()
    tf.set_random_seed(args.seed)
    dataset = load(args)

    ex = boml.BOMLExperiment(dataset, meta_batch_size=args.meta_batch_size)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse", truncate_iter=args.truncate_iter)
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1")
    # The base learner: a linear classifier on the meta-learned features (zeros at every episode).
    ex.model = boml_ho.base_learner(meta_learner.re_forward(ex.x).out, meta_learner)
    inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
    query_logits = ex.model.re_forward(meta_learner.re_forward(ex.x_).out).out
    outer_objective = boml.utils.cross_entropy(query_logits, ex.y_)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=args.lr, T=args.T, experiment=ex,
                                    var_list=ex.model.var_list, outer_objective=outer_objective)
    boml_ho.ul_problem(outer_objective, meta_learning_rate=args.meta_lr, inner_grad=inner_grad,
                       meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
    boml_ho.aggregate_all()
    test_accuracy = boml_ho.adapted(boml.utils.classification_acc(query_logits, ex.y_), inner_grad)

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        rand = np.random.RandomState(args.seed)
        start = time.time()
        for it in range(1, args.iterations + 1):
            episodes = dataset.train.generate_batch(args.meta_batch_size, rand=rand)
            losses = boml_ho.run(*ex.feed_dicts(episodes), session=sess)
            if it % args.print_interval == 0 or it == args.iterations:
                print(f"Iteration {it}: inner loss {losses['inner_loss']:.4f}, outer loss {losses['outer_loss']:.4f} "
                      f"({time.time() - start:.0f}s)", flush=True)

        # Fixed test episodes (seed 12345), adapted in batches of 25.
        (accuracies,) = boml.utils.run_on_episodes(sess, [test_accuracy], ex, dataset.test, args.test_episodes,
                                                   rand=12345)
    mean, _, ci = boml.utils.mean_std_ci(accuracies)
    print(f"RHG test accuracy: {100 * mean:.2f}% +- {100 * ci:.2f}% ({len(accuracies)} episodes)")
    return mean, ci


if __name__ == "__main__":
    main()
