"""docs/layout.rst names every module of the package once, and only modules that exist."""
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PACKAGE = os.path.join(ROOT, "boml")


def _listed_modules():
    with open(os.path.join(ROOT, "docs", "layout.rst"), encoding="utf-8") as stream:
        text = stream.read()
    listed, folder = [], None
    for line in text.split("\n"):
        heading = re.search(r"\(``boml/([a-z0-9_/]*)``\)$", line)
        if heading:
            folder = heading.group(1)
        item = re.match(r"\* ``([a-z0-9_/]+\.py)``:", line)
        if item and folder is not None:
            listed.append(folder + item.group(1))
    return listed


def test_layout_page_lists_every_module_once():
    actual = sorted(os.path.relpath(os.path.join(d, f), PACKAGE) for d, _, files in os.walk(PACKAGE)
                    for f in files if f.endswith(".py"))
    listed = _listed_modules()
    assert len(listed) == len(set(listed)), sorted(m for m in listed if listed.count(m) > 1)
    assert sorted(listed) == actual, (sorted(set(actual) - set(listed)), sorted(set(listed) - set(actual)))
