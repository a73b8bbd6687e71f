"""The Sphinx documentation builds with warnings as errors, and every code example in it runs.

Every example is a complete program: each runs in its own namespace and a fresh graph. The quick start is
the README's example, included with ``literalinclude``. All examples run in one subprocess (TensorFlow is
imported once), concurrently with the Sphinx build.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOCS = os.path.join(ROOT, "docs")
README = os.path.join(ROOT, "README.md")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}

_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode):: python\s*$|^(\s*)\.\. testcode::\s*$")
_INCLUDE = re.compile(r"^\s*\.\. literalinclude:: (\S+)\s*$")


def markdown_blocks(path):
    """The ```python blocks of a Markdown file."""
    with open(path, encoding="utf-8") as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)


def rst_blocks(path):
    """The Python code of every ``code-block:: python``/``testcode`` directive of a reST file, in order.

    A ``literalinclude`` of a Markdown file with ``:language: python`` contributes that file's first
    ```python block (the quick start includes the README's example this way).
    """
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        match, include = _DIRECTIVE.match(lines[i]), _INCLUDE.match(lines[i])
        if include:
            options = []
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith(":"):
                options.append(lines[j].strip())
                j += 1
            target = os.path.normpath(os.path.join(os.path.dirname(path), include.group(1)))
            if ":language: python" in options and target.endswith(".md"):
                blocks.append(markdown_blocks(target)[0])
            i = j
            continue
        if not match:
            i += 1
            continue
        indent = len(match.group(1) if match.group(1) is not None else match.group(2))
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith(":"):  # directive options
            j += 1
        body = []
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
        i = j
    return blocks


def doc_pages():
    return sorted(os.path.join(DOCS, name) for name in os.listdir(DOCS) if name.endswith(".rst"))


RUNNER = r'''
import json, sys, traceback
import tensorflow.compat.v1 as tf
pages = json.load(sys.stdin)
failures = 0
for name, code in pages:
    graph = tf.Graph()
    try:
        with graph.as_default():
            exec(compile(code, name, "exec"), {"__name__": "__docs__"})
        print("PAGE OK", name, flush=True)
    except BaseException:
        failures += 1
        print("PAGE FAILED", name, flush=True)
        traceback.print_exc()
sys.exit(1 if failures else 0)
'''


@pytest.fixture(scope="module")
def sphinx_build(tmp_path_factory):
    """Starts ``sphinx-build -W`` in the background; yields a function that waits for it."""
    out = tmp_path_factory.mktemp("docs_html")
    process = subprocess.Popen([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", DOCS,
                                str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

    def wait():
        stdout, stderr = process.communicate(timeout=900)
        return process.returncode, stdout + stderr, out

    yield wait
    if process.poll() is None:
        process.kill()


def test_every_page_has_the_required_examples():
    pages = {os.path.basename(p): rst_blocks(p) for p in doc_pages()}
    for required in ("index.rst", "installation.rst", "quickstart.rst", "formulation.rst", "meta_init.rst",
                     "meta_feat.rst", "forward.rst", "combinations.rst", "extension.rst", "api.rst",
                     "workflow.rst"):
        assert required in pages, required
    assert pages["quickstart.rst"] == markdown_blocks(README)[:1]
    extension = pages["extension.rst"]
    assert len(extension) == 3
    for code, call in zip(extension, ("register_lower_iter", "register_upper_iter", "register_network")):
        assert f"boml.extension.{call}(" in code and "assert " in code


def test_docs_examples_run(sphinx_build):
    import json

    pages = [(f"{os.path.basename(p)}#{k}", code) for p in doc_pages() for k, code in enumerate(rst_blocks(p))]
    assert len(pages) >= 10
    result = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(pages), capture_output=True,
                            text=True, timeout=900, env=ENV, cwd=ROOT)
    ok = set(re.findall(r"^PAGE OK (\S+)$", result.stdout, flags=re.M))
    assert result.returncode == 0 and ok == {name for name, _ in pages}, (result.stdout + result.stderr)[-6000:]


def test_docs_build_without_warnings(sphinx_build):
    returncode, output, out = sphinx_build()
    assert returncode == 0, output[-6000:]
    with open(os.path.join(out, "combinations.html"), encoding="utf-8") as handle:
        html = handle.read()
    from boml.boml_optimizer import allowed_triples

    for triple in allowed_triples():  # the table is the code's
        row = re.search(r"<tr[^>]*>\s*" + r"\s*".join(
            rf'<td><p><code class="docutils literal notranslate"><span class="pre">{re.escape(name)}</span>'
            r'</code></p></td>'
            for name in triple), html)
        assert row, triple
    with open(os.path.join(out, "api.html"), encoding="utf-8") as handle:
        api = handle.read()
    import boml

    for name in boml.__all__:  # every top-level name is in the index of public names
        assert f'<span class="pre">boml.{name}</span>' in api, name


def test_docstring_normalizer_makes_lists_valid_rest():
    sys.path.insert(0, os.path.join(DOCS, "_ext"))
    try:
        import bomldocs
    finally:
        sys.path.remove(os.path.join(DOCS, "_ext"))
    lines = ["Roles:", "* first item", "  continued", "* second", "After the list.", "", "Parameters:", "1. one"]
    bomldocs.normalize_docstring(lines)
    assert lines == ["Roles:", "", "* first item", "  continued", "* second", "", "After the list.", "",
                     "Parameter dictionaries:", "", "1. one"]
    untouched = ["Args:", "    x: a value.", "", "* already", "* fine"]
    bomldocs.normalize_docstring(untouched)
    assert untouched == ["Args:", "    x: a value.", "", "* already", "* fine"]
