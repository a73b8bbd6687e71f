"""MAML with the meta-batch sharded over the workers of a cluster (boml.distributed, in-graph replication).

Start the servers first (one per task), then this client::

    SPEC="worker=127.0.0.1:2222,127.0.0.1:2223"
    python -m boml worker --cluster_spec "$SPEC" --task_index 0 &
    python -m boml worker --cluster_spec "$SPEC" --task_index 1 &
    python examples/distributed_maml.py --cluster_spec "$SPEC" --iterations 20

Without ``--cluster_spec`` the cluster comes from ``TF_CONFIG``. Synthetic 5-way 1-shot 28x28
episodes, so it runs without data; the meta-parameters live on the ps (else worker 0).
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402
from boml import distributed  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="Distributed MAML on synthetic episodes.")
    parser.add_argument("--cluster_spec", default=None, help="cluster (default: TF_CONFIG)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--meta_batch_size", type=int, default=4)
    parser.add_argument("--connect_timeout", type=float, default=60.0)
    parser.add_argument("--image_size", type=int, default=28, help="side of the synthetic images")
    parser.add_argument("--dim_hidden", type=int, nargs="+", default=None,
                        help="hidden sizes of a fully connected meta-learner [default: the conv network]")
    args = parser.parse_args(argv)
    tf.disable_eager_execution()
    cluster = distributed.Cluster.from_spec(args.cluster_spec)
    side = args.image_size
    dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=5, image_shape=(side, side, 1), seed=0)
    network = {} if args.dim_hidden is None else {"dim_hidden": tuple(args.dim_hidden)}
    graph = tf.Graph()
    with graph.as_default(), distributed.replicate(cluster):
        ex = boml.BOMLExperiment(dataset, meta_batch_size=args.meta_batch_size)
        boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
        meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", **network)
        ex.model = boml_ho.base_learner(ex.x, meta_learner)
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.4, 3, experiment=ex)
        boml_ho.ul_problem(boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_), 1e-3, inner_grad,
                           meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
        boml_ho.aggregate_all()
        init = tf.global_variables_initializer()
    print(f"{cluster}: meta-parameters on {cluster.parameter_device}, shards on {cluster.worker_devices}")
    rand = np.random.RandomState(0)
    with distributed.connect(cluster, graph=graph, connect_timeout=args.connect_timeout) as sess:
        sess.run(init)
        for it in range(1, args.iterations + 1):
            episodes = dataset.train.generate_batch(args.meta_batch_size, rand=rand)
            losses = boml_ho.run(*ex.feed_dicts(episodes), session=sess)
            print(f"it {it} outer loss {losses['outer_loss']:.4f} inner loss {losses['inner_loss']:.4f}", flush=True)
    return losses


if __name__ == "__main__":
    main()
