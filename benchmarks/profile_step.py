"""Profile of one boml meta-iteration (RunMetadata step stats), split by op type and by derivative order.

Sums the kernel times (``all_end_rel_micros``) of every op run in one traced
meta-iteration, functions bodies included; with several ops in flight the sum
exceeds the wall time, so read the shares, not the totals. The derivative order
of an op is the number of ``gradients`` scopes in its name (0: forward, 1: the
inner gradient or the meta-gradient of the forward, 2: second derivatives).

    python benchmarks/profile_step.py [--algorithm MAML] [--meta-batch 32] [--T 5] [--top 25] \
        [--vectorize auto|true|false]
"""
import argparse
import collections
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402
from maml_reference import build_floor, build_reference  # noqa: E402
from maml_step import VECTORIZE, build_boml  # noqa: E402



def _op_type(node_stats):
    # timeline_label is "name = Type(inputs)"
    label = node_stats.timeline_label
    if " = " in label:
        return label.split(" = ", 1)[1].split("(", 1)[0]
    return node_stats.node_name.split(":")[0]


class TracingSession(tf.Session):
    """A session whose ``run`` calls use ``trace`` (options, metadata) when it is set."""

    trace = None

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        if self.trace is not None:
            options, run_metadata = self.trace
        return super().run(fetches, feed_dict=feed_dict, options=options, run_metadata=run_metadata)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="MAML", choices=["MAML", "FMAML"])
    parser.add_argument("--system", default="boml", choices=["boml", "reference", "floor"],
                        help="floor: the reference with one task holding every task's images (compare.py --floor)")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--traces", type=int, default=2, help="traced meta-iterations (summed)")
    parser.add_argument("--vectorize", choices=sorted(VECTORIZE), default="auto",
                        help="boml's vectorize_tasks (boml.vectorize; default: auto, the library's default)")
    args = parser.parse_args()
    tf.disable_eager_execution()
    if args.system == "boml":
        dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=15, image_shape=(28, 28, 1),
                                      seed=0)
        boml_ho, ex = build_boml(args.algorithm, dataset, args.meta_batch, args.T,
                                 ul_options={"vectorize_tasks": VECTORIZE[args.vectorize]})
        feeds = ex.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=np.random.RandomState(0)))
    elif args.system == "reference":
        train, feed = build_reference(args.meta_batch, args.T, "fused", args.algorithm == "FMAML")
    else:
        train, feed = build_floor(args.meta_batch, args.T, args.algorithm == "FMAML")
    by_type, by_order, by_type_order = collections.Counter(), collections.Counter(), collections.Counter()
    walls = []
    with TracingSession() as session:
        session.run(tf.global_variables_initializer())
        if args.system == "boml":
            def run(options=None, metadata=None):
                session.trace = None if options is None else (options, metadata)
                boml_ho.run(*feeds, session=session)
                session.trace = None
        else:
            def run(options=None, metadata=None):
                return session.run(train, feed, options=options, run_metadata=metadata)
        run()
        run()
        for _ in range(args.traces):
            metadata = tf.RunMetadata()
            start = time.perf_counter()
            run(tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), metadata)
            walls.append(time.perf_counter() - start)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    micros = node.all_end_rel_micros
                    kind = _op_type(node)
                    if kind in ("While", "StatelessWhile", "PartitionedCall", "StatefulPartitionedCall",
                                "_Retval", "_Arg", "NoOp"):
                        continue  # containers and plumbing: their time is that of the ops inside
                    order = min(node.node_name.count("gradients"), 2)
                    by_type[kind] += micros
                    by_order[order] += micros
                    by_type_order[(kind, order)] += micros
    total = sum(by_type.values())
    print(f"{args.system} {args.algorithm} meta_batch={args.meta_batch} T={args.T}: traced wall "
          f"{np.mean(walls):.2f} s/iter, summed kernel time {total / 1e6 / args.traces:.2f} s/iter")
    print("by derivative order: " + ", ".join(f"{k}: {100 * v / total:.1f}%" for k, v in sorted(by_order.items())))
    print(f"{'op type':32s} {'share':>7s}  {'s/iter':>7s}  forward / 1st / 2nd")
    for kind, micros in by_type.most_common(args.top):
        parts = " / ".join(f"{100 * by_type_order[(kind, o)] / total:.1f}" for o in range(3))
        print(f"{kind:32s} {100 * micros / total:6.1f}%  {micros / 1e6 / args.traces:7.3f}  {parts}")


if __name__ == "__main__":
    main()
