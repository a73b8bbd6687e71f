"""``python -m boml``: flag parsing (booleans, no prefix matching), presets, train and evaluate end to end."""
import argparse
import json
import os
import subprocess
import sys

import pytest

from boml import workflow
from boml.__main__ import build_parser, config_from_args, main, parse_bool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(*argv):
    return build_parser().parse_args(["train", *argv])


@pytest.mark.parametrize("text,value", [("true", True), ("False", False), ("yes", True), ("0", False),
                                        ("ON", True), ("n", False)])
def test_parse_bool(text, value):
    assert parse_bool(text) is value


def test_parse_bool_rejects_other_words():
    with pytest.raises(argparse.ArgumentTypeError, match="expected a boolean"):
        parse_bool("maybe")


@pytest.mark.parametrize("argv,value", [
    ([], None),
    (["--learn_lr"], True),
    (["--learn_lr", "true"], True),
    (["--learn_lr", "false"], False),
    (["--learn_lr=False"], False),  # the original's type=bool parsed this as True
    (["--no-learn_lr"], False),
    (["--no_learn_lr"], False),
    (["-lrl", "false"], False),
])
def test_boolean_flags(argv, value):
    assert parse(*argv).learn_lr is value


@pytest.mark.parametrize("argv,value", [([], None), (["--vectorize_tasks", "auto"], None),
                                        (["--vectorize_tasks"], True), (["--vectorize_tasks", "false"], False),
                                        (["--no-vectorize_tasks"], False)])
def test_vectorize_tasks_takes_auto_true_or_false(argv, value):
    assert config_from_args(parse(*argv)).vectorize_tasks is value


def test_vectorize_tasks_refuses_another_word(capsys):
    with pytest.raises(SystemExit):
        parse("--vectorize_tasks", "sometimes")
    assert "expected a boolean" in capsys.readouterr().err


def test_a_bare_boolean_before_another_flag():
    args = parse("--first_order", "--meta_lr", "0.01")
    assert args.first_order is True and args.meta_lr == 0.01


@pytest.mark.parametrize("argv", [
    ["--meta-lr", "0.1"],      # the original's prefix collision with --meta-lr-decay-rate
    ["--meta_l", "0.1"],       # abbreviations are never expanded
    ["--learn", "true"],
    ["--lr", "-0.1"],
    ["--lr", "abc"],
    ["--T", "0"],
    ["--meta_batch_size", "2.5"],
    ["--learn_lr", "maybe"],
    ["--while_loop_threshold", "0"],
    ["--task_memory_budget", "0"],
])
def test_bad_flags_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_original_names_and_short_forms():
    args = parse("-mbs", "4", "-mlr", "0.01", "--meta-lr-decay-rate", "0.5", "-T", "3", "-nc", "20",
                 "-etr", "5", "-etes", "2", "-io", "Momentum", "-oo", "SGD", "-cv", "1.5", "-tr_ir", "1")
    assert (args.meta_batch_size, args.meta_lr, args.meta_lr_decay_rate, args.T) == (4, 0.01, 0.5, 3)
    assert (args.classes, args.examples_train, args.examples_test) == (20, 5, 2)
    assert (args.inner_opt, args.outer_opt, args.clip_value, args.truncate_iter) == ("Momentum", "SGD", 1.5, 1)


def test_iterations_to_test_are_integers():
    args = build_parser().parse_args(["evaluate", "--run_dir", "x", "--iterations_to_test", "100", "2000"])
    assert args.iterations_to_test == [100, 2000]


def test_preset_then_json_then_flags(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"T": 4, "meta_batch_size": 6}))
    config = config_from_args(parse("--preset", "rhg-omniglot-5w1s", "--config", str(path), "--T", "7"))
    assert config.algorithm == "rhg" and config.T == 7 and config.meta_batch_size == 6
    assert config.lr == workflow.PRESETS["rhg-omniglot-5w1s"]["lr"]
    # An explicit triple replaces the preset's algorithm; the unspecified parts are kept.
    config = config_from_args(parse("--preset", "rhg-omniglot-5w1s", "--outer_method", "Implicit")).validate()
    assert (config.algorithm, config.method, config.inner_method, config.outer_method) == \
        (None, "MetaFeat", "Trad", "Implicit")


def test_boml_errors_exit_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algorithm", "mamll", "--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "UnknownNameError: Unknown algorithm 'mamll'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "nope"])
    assert "Unknown preset 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--run_dir", str(tmp_path / "missing")])
    assert "config.json" in capsys.readouterr().err


def test_train_then_evaluate(tmp_path, capsys):
    argv = ["train", "--preset", "maml-synthetic", "--image_size", "8", "--num_filters", "4", "--classes", "3",
            "--examples_test", "2", "--meta_batch_size", "2", "--meta_train_iterations", "4", "--test_episodes", "6",
            "--save_interval", "2", "--val_interval", "0", "--print_interval", "2", "--logdir", str(tmp_path),
            "--name", "cli", "--learn_lr", "false", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["iterations"] == 4 and summary["test_episodes"] == 6
    results = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert results["config"]["learn_lr"] is False and results["config"]["meta_batch_size"] == 2
    assert main(["evaluate", "--run_dir", str(tmp_path / "cli"), "-itt", "2", "4", "--test_episodes", "6",
                 "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["iteration"] for r in rows] == [2, 4]
    assert rows[1]["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-5)


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "boml", "presets"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "maml-omniglot-5w1s" in done.stdout and "rhg-omniglot-5w1s" in done.stdout


# ------------------------------------------------------------------------------------------ generated flags
def subparser(name):
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def visible_actions(parser):
    return [a for a in parser._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


def test_every_configuration_field_is_a_train_flag_with_help_and_default():
    from boml.workflow.config import field_default, fields

    train = subparser("train")
    by_dest = {a.dest: a for a in visible_actions(train)}
    for field in fields():
        action = by_dest[field.name]
        assert f"--{field.name}" in action.option_strings
        assert set(field.metadata["flags"]) <= set(action.option_strings)
        assert field.metadata["help"] in action.help
        shown = field_default(field.name)
        if "(default:" not in field.metadata["help"]:
            text = {None: "none", True: "true", False: "false"}.get(shown, str(shown)) if not isinstance(
                shown, (int, float)) or isinstance(shown, bool) else str(shown)
            assert f"[default: {text}]" in action.help, field.name
    assert all(a.help for a in visible_actions(train))


def test_every_evaluate_and_plot_option_has_help():
    for name in ("evaluate", "plot", "presets"):
        for action in visible_actions(subparser(name)):
            assert action.help and len(action.help) > 10, (name, action.dest)


def test_readme_algorithms_are_all_reachable_by_algorithm():
    """Each row of the README's algorithm table resolves to one of the triples that row lists."""
    import re

    from boml.workflow.config import algorithm_key

    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    table = text[text.index("| algorithm |"):].split("\n\n")[0].splitlines()[2:]
    assert len(table) >= 12
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        name = re.split(r"[ (]", cells[0])[0]
        method, inner, outer = [part.strip() for part in cells[1].split("/")]
        config = workflow.Config(algorithm=algorithm_key(name)).resolved()
        assert config.method == method, name
        assert config.inner_method in inner.split(" or "), name
        assert config.outer_method in outer.split(" or "), name


@pytest.mark.parametrize("algorithm,flags", [("reptile", {}), ("mtnet", {"use_t": True, "use_mask": True}),
                                             ("FMAML", {"first_order": True}), ("Forward-mode", {})])
def test_new_algorithm_names(algorithm, flags):
    config = config_from_args(parse("--algorithm", algorithm)).validate()
    assert all(getattr(config, k) == v for k, v in flags.items())


def test_presets_are_listed_with_their_descriptions(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, description in workflow.presets.PRESET_DESCRIPTIONS.items():
        assert f"{name}: {description}" in out
    assert set(workflow.presets.PRESET_DESCRIPTIONS) == set(workflow.PRESETS)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["presets"], ["evaluate", "--help"],
                                  ["data", "--help"]])
def test_help_and_presets_do_not_import_tensorflow(argv):
    """``python -X importtime`` lists every module imported: TensorFlow must not be one of them."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "boml", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import")]
    assert "boml.__main__" in imported or "boml" in imported
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "matplotlib")]


def test_missing_data_names_the_command_and_leaves_no_run_behind(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path / "datasets"))
    logdir = tmp_path / "logs"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--preset", "maml-omniglot-5w1s", "--logdir", str(logdir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "MissingDataError" in err and err.strip().endswith("python -m boml data fetch omniglot")
    assert not logdir.exists()


@pytest.mark.parametrize("value,message", [("-1", "must be >= 0; received '-1'"),
                                           ("4294967296", "must be <= 4294967295; received '4294967296'"),
                                           ("1.5", "expected an integer; received '1.5'")])
def test_bad_seeds_are_refused_by_the_command_line(value, message, capsys):
    """The original's --seed -1 reached NumPy's RandomState and died in a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--seed", value, "--dataset", "synthetic"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --seed/-s: {message}" in err and "Traceback" not in err
    assert parse("--seed", "4294967295").seed == 4294967295


@pytest.mark.parametrize("changes", [{"seed": -1}, {"seed": 2 ** 32}, {"test_seed": 2 ** 32 - 1}])
def test_bad_seeds_are_refused_by_the_configuration(changes):
    from boml.errors import InvalidArgumentError

    name = next(iter(changes))
    with pytest.raises(InvalidArgumentError, match=f"{name} must be an integer >= 0 and <= "):
        workflow.Config(**changes).validate()
