"""Sphinx directives that generate parts of the boml documentation from the code itself.

``.. boml-combinations::``
    The table of allowed ``(method, inner_method, outer_method)`` triples, read from
    :func:`boml.boml_optimizer.allowed_triples` at build time, with the strategy classes the
    names resolve to in the registries and the algorithms each triple gives.

``.. boml-api:: boml.lower_iter``
    The API reference of a package: its docstring, then every leaf module under it with each of
    its public names (the names of its ``__all__``, else the classes, functions and UPPER_CASE
    constants it defines) documented once, with autodoc.

``.. boml-api-index::``
    The table of every name of ``boml.__all__`` and of the sub-packages' ``__all__``, linked to
    where it is documented. A public name that no ``boml-api`` directive covers is reported as a
    warning, which ``sphinx-build -W`` turns into an error: the reference cannot silently miss a
    name.

``.. boml-autoclass-if:: dotted.path.Class``
    ``autoclass`` (``:no-index:``) when the object is importable, a note otherwise (used for
    strategies that are being added, such as ``Forward``).
"""
import importlib
import inspect
import pkgutil
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

LOGGER = logging.getLogger(__name__)

#: Modules documented only when they import (strategies being added by other work).
OPTIONAL_MODULES = ("boml.upper_iter.forward", "boml.upper_iter.reptile")
#: Modules that are scripts, not API.
SKIPPED_MODULES = ("boml.__main__",)

#: Which algorithm each allowed triple gives, and the flags that select it (for the table).
ALGORITHMS = {
    ("MetaInit", "Simple", "Simple"): "MAML, FMAML (``first_order=True``), Meta-SGD (``learn_lr=True``), "
                                      "MT-net (``use_t=True``), WarpGrad (``use_warp=True``)",
    ("MetaInit", "Simple", "Reptile"): "Reptile",
    ("MetaFeat", "Trad", "Reverse"): "RHG; TRHG with ``truncate_iter=K``",
    ("MetaFeat", "Trad", "Implicit"): "HOAG (implicit, conjugate gradient)",
    ("MetaFeat", "Trad", "Darts"): "DARTS (one-step, finite differences)",
    ("MetaFeat", "Trad", "Forward"): "Forward-mode hypergradient (few hyperparameters)",
    ("MetaFeat", "Aggr", "Reverse"): "BDA with a reverse-mode hypergradient",
    ("MetaFeat", "Aggr", "Darts"): "BDA with the DARTS approximation",
    ("MetaFeat", "Aggr", "Forward"): "BDA with a forward-mode hypergradient",
}


# ---------------------------------------------------------------------------------------------- discovery
def package_modules(package_name):
    """``(package, [leaf or sub-package modules])`` under ``package_name``, importable ones only."""
    try:
        package = importlib.import_module(package_name)
    except ImportError:
        if package_name in OPTIONAL_MODULES:
            return []
        raise
    modules = [package]
    if hasattr(package, "__path__"):
        for info in sorted(pkgutil.walk_packages(package.__path__, package_name + "."), key=lambda i: i.name):
            if info.name in SKIPPED_MODULES:
                continue
            try:
                modules.append(importlib.import_module(info.name))
            except ImportError:
                if info.name in OPTIONAL_MODULES:
                    continue
                raise
    return modules


def _assigned_names(module):
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return set()
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_]*)\s*(?::[^=\n]*)?=", source, flags=re.M))


def own_names(module):
    """Public names a module defines (not those it imports), in source order where possible."""
    assigned = _assigned_names(module)
    exported = list(getattr(module, "__all__", []) or [])
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            if getattr(value, "__module__", None) == module.__name__:
                names.append(name)
        elif name in assigned and (name.isupper() or name in exported):
            names.append(name)
    for name in exported:  # names of __all__ assigned here by other means
        if name not in names and name in assigned and not inspect.ismodule(getattr(module, name, None)):
            names.append(name)
    return names


def documented_objects(module_names):
    """``{id(object): dotted path}`` of every object documented for these modules."""
    table = {}
    for module in (importlib.import_module(name) for name in module_names):
        table[id(module)] = module.__name__
        for name in own_names(module):
            table.setdefault(id(getattr(module, name)), f"{module.__name__}.{name}")
    return table


def public_names(root="boml"):
    """``[(qualified public name, object)]``: ``boml.__all__`` and every (sub-)package's ``__all__``."""
    result = []
    for module in package_modules(root):
        for name in getattr(module, "__all__", []) or []:
            if hasattr(module, name):
                result.append((f"{module.__name__}.{name}", getattr(module, name)))
            else:
                LOGGER.warning("boml-api: %s.__all__ lists %r, which the module does not define",
                               module.__name__, name)
    return result


# ---------------------------------------------------------------------------------------------- rendering
def _directive_for(value):
    if inspect.isclass(value):
        return "autoexception" if issubclass(value, BaseException) else "autoclass"
    if inspect.isfunction(value):
        return "autofunction"
    return "autodata"


def module_lines(module, heading_char="-"):
    title = f"``{module.__name__}``"
    lines = [title, heading_char * len(title), "", f".. automodule:: {module.__name__}", ""]
    for name in own_names(module):
        value = getattr(module, name)
        directive = _directive_for(value)
        lines.append(f".. {directive}:: {module.__name__}.{name}")
        if directive in ("autoclass", "autoexception"):
            lines += ["   :members:", "   :show-inheritance:"]
        elif directive == "autodata":
            text = repr(value)
            if len(text) > 100 or " at 0x" in text:
                lines.append("   :no-value:")
        lines.append("")
    return lines


def _parse(directive, lines):
    container = nodes.section()
    container.document = directive.state.document
    content = StringList(lines, source=f"<{directive.name} generated>")
    nested_parse_with_titles(directive.state, content, container)
    return container.children


class BomlApi(SphinxDirective):
    """Autodoc of every public name of one or more packages or modules (see the module docstring)."""

    required_arguments = 1
    optional_arguments = 20

    def run(self):
        lines = []
        recorded = self.env.temp_data.setdefault("boml_api_modules", [])
        for package_name in self.arguments:
            for module in package_modules(package_name):
                recorded.append(module.__name__)
                lines += module_lines(module, heading_char="~")
        return _parse(self, lines)


class BomlApiIndex(SphinxDirective):
    """The table of public names, and the check that every one is documented."""

    def run(self):
        documented = documented_objects(["boml"] + self.env.temp_data.get("boml_api_modules", []))
        rows = []
        for qualified, value in public_names("boml"):
            target = documented.get(id(value))
            if target is None:
                LOGGER.warning("boml-api: the public name %s is not covered by the API reference", qualified,
                               location=self.get_location())
                continue
            rows.append((qualified, target))
        recorded = set(self.env.temp_data.get("boml_api_modules", []))
        for module in package_modules("boml"):
            if module.__name__ != "boml" and module.__name__ not in recorded:
                LOGGER.warning("boml-api: the module %s is not covered by the API reference", module.__name__,
                               location=self.get_location())
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 45 55", "",
                 "   * - public name", "     - documented as"]
        for qualified, target in rows:
            lines += [f"   * - ``{qualified}``", f"     - :py:obj:`{target}`"]
        return _parse(self, lines)


class BomlCombinations(SphinxDirective):
    """The allowed (method, inner_method, outer_method) table, generated from the code."""

    def run(self):
        from boml import extension
        from boml.boml_optimizer import allowed_triples

        lines = [".. list-table:: Allowed combinations (generated from ``boml.boml_optimizer.allowed_triples()``)",
                 "   :header-rows: 1", "   :widths: 12 12 12 30 34", "",
                 "   * - ``method``", "     - ``inner_method``", "     - ``outer_method``",
                 "     - strategy classes", "     - algorithms"]
        for method, inner, outer in allowed_triples():
            classes = []
            for registry, name in ((extension.LOWER_ITERS, inner), (extension.UPPER_ITERS, outer)):
                entry = registry.get(name) if name in registry else None
                classes.append(f":py:class:`~{entry.__module__}.{entry.__qualname__}`" if entry is not None
                               else "(not registered)")
            lines += [f"   * - ``{method}``", f"     - ``{inner}``", f"     - ``{outer}``",
                      f"     - {classes[0]} / {classes[1]}",
                      f"     - {ALGORITHMS.get((method, inner, outer), '(user-allowed combination)')}"]
        return _parse(self, lines)


class BomlAutoclassIf(SphinxDirective):
    """``autoclass`` of an object if it imports, else a note."""

    required_arguments = 1

    def run(self):
        path = self.arguments[0]
        module_name, _, attribute = path.rpartition(".")
        try:
            getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            lines = [".. note::", "", f"   ``{path}`` is not available in this version of boml."]
        else:
            lines = [f".. autoclass:: {path}", "   :no-index:", ""]
        return _parse(self, lines)


_BULLET = re.compile(r"(\* |- |\d+\. )")


def normalize_docstring(lines):
    """Makes plain-text docstrings valid reStructuredText without changing their words.

    Many docstrings start a bullet list right after a paragraph line (``Roles:`` then
    ``* ...``) or end it without a blank line, which reads well in a terminal but is invalid
    reST. A blank line is inserted before and after such lists. A ``Parameters:`` line that
    introduces such a list (a description of parameter dictionaries, not an argument list) is
    renamed so that napoleon does not take it for its Google "Parameters" section.
    """
    out = []
    list_indent = None
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        bullet = bool(_BULLET.match(stripped))
        if not stripped:
            list_indent = None
        elif bullet and list_indent is None:
            if out and out[-1].strip():
                if out[-1].strip() == "Parameters:":
                    out[-1] = out[-1].replace("Parameters:", "Parameter dictionaries:")
                out.append("")
            list_indent = indent
        elif list_indent is not None and indent <= list_indent and not bullet:
            out.append("")
            list_indent = None
        out.append(line)
    lines[:] = out


def _process_docstring(app, what, name, obj, options, lines):
    if what in ("data", "attribute") and lines and not (inspect.isclass(obj) or inspect.isroutine(obj)):
        type_doc = inspect.getdoc(type(obj)) or ""
        if type_doc and "\n".join(lines).strip() == type_doc.strip():  # the value's type's docstring
            lines[:] = []
            return
    normalize_docstring(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)  # before napoleon (500)
    app.add_directive("boml-api", BomlApi)
    app.add_directive("boml-api-index", BomlApiIndex)
    app.add_directive("boml-combinations", BomlCombinations)
    app.add_directive("boml-autoclass-if", BomlAutoclassIf)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
