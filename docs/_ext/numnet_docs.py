"""numnet's own Sphinx directives: the documentation's code runs while the site builds.

- ``numnet-example``: run a block of Python (one namespace and one working folder per page), show the code,
  what it printed and every image it wrote. An exception or a warning fails a strict build. The code runs
  on one BLAS thread, as the experiments and the test suite do (numnet.backend.one_blas_thread: the
  tutorials' small products are several times faster so on a busy machine).
- The figures are saved with their labels in the build's language (numnet.plots.set_language). With the
  configuration value ``numnet_example_cache`` (a folder), the English site's build records every run there
  (what it printed, and each figure as a pickled matplotlib Figure) and the build of another language, or of
  the message catalogues, replays it: the same code prints the same output, so only the figures are saved
  again, relabelled; a run the record lacks runs (after the page's replayed runs, so that it finds their
  variables).
- ``numnet-command``: run ``numnet ARGS`` in-process (``numnet.cli.main``) and show the console session and
  the images it wrote; a non-zero exit status fails the build.
- ``numnet-api``: the API reference of one module, from its docstrings: every public function and class,
  every name table listed with its entries, and the constants that carry a ``#:`` doc comment.
- ``numnet-table``: a name table (``numnet.ACTIVATIONS``, ...) as a table of its names and what they build.
- ``numnet-source``: a source file of the package with an anchor on every line (``#L-423``).
- ``numnet-backprop-lines``: BP1-BP4, found by their ``# BP`` markers in the source as it is now, each with
  a link to its line in the ``numnet-source`` page of that file.

A ``missing-reference`` handler lets docstrings name an object by any path it is reachable by
(``numnet.network.Network`` or ``Network``): it resolves to wherever the reference documents the object.
"""

import ast
import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import os
import pathlib
import pickle
import re
import shlex
import shutil
import time
import traceback
import unittest.mock
import warnings

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from numnet import plot_labels
from numnet.backend import one_blas_thread

LOGGER = logging.getLogger(__name__)
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
# Where each page's examples run (below the doctree folder, so a build leaves the source tree clean).
RUNS_FOLDER = "numnet-examples"
# A constant whose value prints longer than this is documented without its value.
SHORTEST_HIDDEN_VALUE = 100
BP_MARKER = re.compile(r"#\s*(BP[1-4])\b")
# The files whose BP markers the backpropagation page links to, and the page that lists each one.
BACKPROP_SOURCES = {"numnet/network.py": "source/network", "numnet/layers.py": "source/layers",
                    "numnet/conv.py": "source/conv", "numnet/embedding.py": "source/embedding",
                    "numnet/recurrent.py": "source/recurrent", "numnet/explain.py": "source/explain"}


# ---------------------------------------------------------------------------------------------------------
# Running the documentation's code


@dataclasses.dataclass
class _PageRun:
    """What the examples of one page share: a namespace, a working folder, what ran so far (each run's
    directive and code) and the runs replayed from a record but not executed yet."""

    namespace: dict
    folder: pathlib.Path
    runs: list = dataclasses.field(default_factory=list)
    replayed: list = dataclasses.field(default_factory=list)


def _page_run(directive):
    """The current page's run, started (with a fresh, empty folder) by the page's first example."""
    env = directive.env
    run = env.temp_data.get("numnet_run")
    if run is None:
        folder = pathlib.Path(env.doctreedir) / RUNS_FOLDER / env.docname
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        run = _PageRun({"__name__": "__main__"}, folder)
        env.temp_data["numnet_run"] = run
    return run


@contextlib.contextmanager
def _working_folder(folder):
    """Run with ``folder`` as the current directory (contextlib.chdir needs Python 3.11)."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _images_in(folder):
    """{path: modification time} of every image below ``folder``."""
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()}


def _figure_language(config):
    """The language of the build, as numnet.plots names it ("en" for a language it keeps no labels for)."""
    return config.language if config.language in plot_labels.LANGUAGES else "en"


@contextlib.contextmanager
def _figures_in(language):
    """Save numnet's figures in ``language`` meanwhile; yields [(figure, path, labels left untranslated)] of
    every figure saved. numnet.plots.save_figure writes every figure of numnet.plots, the experiments and
    the command line, so wrapping it sees them all."""
    from numnet import plots

    saved = []
    save = plots.save_figure

    def saving(figure, path):
        untranslated = plot_labels.untranslated_labels(figure, language) if language != "en" else []
        saved.append((figure, pathlib.Path(path).resolve(), untranslated))
        save(figure, path)

    previous = plots.set_language(language)
    try:
        with unittest.mock.patch.object(plots, "save_figure", saving):
            yield saved
    finally:
        plots.set_language(previous)


class _RunRecords:
    """The runs of a page's examples and commands, as the English build records them in a folder (the
    configuration value ``numnet_example_cache``) for the builds in other languages to replay."""

    def __init__(self, folder, recording):
        self.folder = pathlib.Path(folder)
        self.recording = recording

    @classmethod
    def of(cls, config, builder):
        """The records of this build, or None without a folder: the English site's build records, the other
        languages' builds and the message catalogues' (builder "gettext") replay."""
        if not config.numnet_example_cache:
            return None
        return cls(config.numnet_example_cache, _figure_language(config) == "en" and builder.name != "gettext")

    @staticmethod
    def key(docname, runs):
        """The name of a run's record: the page and every run of the page up to it, so a changed earlier
        block invalidates the records of the blocks after it."""
        return hashlib.sha256(json.dumps([docname, runs]).encode()).hexdigest()[:32]

    def store(self, key, record, images, figures, page_folder):
        """Record a run: ``record`` (what it printed and returned), and each image as the Figure that drew it
        (or the file itself, for an image drawn without numnet.plots). A figure that does not pickle leaves
        the run unrecorded."""
        folder = self.folder / key
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        drawn = {path: figure for figure, path, _ in figures}
        entries = []
        for number, image in enumerate(images):
            entry = {"path": image.relative_to(page_folder).as_posix(), "figure": None, "file": None}
            try:
                if image.resolve() in drawn:
                    entry["figure"] = f"figure-{number}.pickle"
                    (folder / entry["figure"]).write_bytes(pickle.dumps(drawn[image.resolve()]))
                else:
                    entry["file"] = f"image-{number}{image.suffix}"
                    shutil.copyfile(image, folder / entry["file"])
            except (pickle.PicklingError, TypeError, AttributeError):
                shutil.rmtree(folder)
                return
            entries.append(entry)
        (folder / "run.json").write_text(json.dumps({**record, "images": entries}), encoding="utf-8")

    def load(self, key):
        """A recorded run's {"printed": text, "result": value, "images": [...]}, or None."""
        record = self.folder / key / "run.json"
        return json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None

    def replay(self, key, record, page_folder):
        """Write a recorded run's images into ``page_folder``: each figure saved again (in the language set
        by _figures_in), each other image copied."""
        from numnet import plots

        for entry in record["images"]:
            target = page_folder / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry["figure"]:
                figure = pickle.loads((self.folder / key / entry["figure"]).read_bytes())
                plots.save_figure(figure, target)
            else:
                shutil.copyfile(self.folder / key / entry["file"], target)


class _RunDirective(SphinxDirective):
    """Shared by numnet-example and numnet-command: run something, then show its output and images."""

    def run_in_page(self, action, identity):
        """Call ``action(page)`` in the page's folder, or replay its record (see _RunRecords); returns
        (printed text, new or rewritten images, what ``action`` returned, a JSON value). ``identity`` is what
        makes the run what it is (its code)."""
        page = _page_run(self)
        page.runs.append(identity)
        records = _RunRecords.of(self.config, self.env.app.builder)
        key = _RunRecords.key(self.env.docname, page.runs)
        if records is not None and not records.recording:
            record = records.load(key)
            if record is not None:
                page.replayed.append(action)
                _, images, _ = self.captured(page, lambda: records.replay(key, record, page.folder))
                return record["printed"], images, record["result"]
            for earlier in page.replayed:
                self.captured(page, lambda: earlier(page))
            page.replayed.clear()
        result = []
        printed, images, figures = self.captured(page, lambda: result.append(action(page)))
        if records is not None and records.recording:
            records.store(key, {"printed": printed, "result": result[0]}, images, figures, page.folder)
        return printed, images, result[0]

    def captured(self, page, function):
        """Call ``function()`` in the page's folder, its output and warnings captured, its figures saved in
        the build's language; returns (printed text, new or rewritten images, the figures it saved). Each
        warning, and on a translated page each figure label the language's table lacks, fails a strict build."""
        before = _images_in(page.folder)
        printed = io.StringIO()
        started = time.perf_counter()
        with (_working_folder(page.folder), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed),
              warnings.catch_warnings(record=True) as caught, one_blas_thread(),
              _figures_in(_figure_language(self.config)) as figures):
            warnings.simplefilter("always")
            function()
        LOGGER.verbose("%s: ran in %.1f s", self.get_location(), time.perf_counter() - started)
        after = _images_in(page.folder)
        images = sorted((path for path, stamp in after.items() if before.get(path) != stamp), key=after.get)
        for warning in caught:
            LOGGER.warning("the code of this page warned: %s: %s", warning.category.__name__, warning.message,
                           location=self.get_location())
        if self.env.docname in getattr(self.config, "numnet_translated_pages", ()):
            for _, path, untranslated in figures:
                for label in untranslated:
                    LOGGER.warning("%s: the figure label %r has no translation in numnet/plot_labels.py",
                                   path.name, label, location=self.get_location())
        return printed.getvalue(), images, figures

    def output_nodes(self, text, images):
        """A literal block of what was printed (if anything) and a figure per image."""
        result = []
        if text.strip():
            output = nodes.literal_block(text.rstrip("\n"), text.rstrip("\n"), language="none")
            output["classes"].append("numnet-output")
            result.append(output)
        if images:
            document_folder = (pathlib.Path(self.env.srcdir) / self.env.docname).parent
            figures = nodes.container(classes=["numnet-figures"])
            for image in images:
                uri = os.path.relpath(image, document_folder).replace(os.sep, "/")
                figures += nodes.figure("", nodes.image(uri=uri, alt=image.stem.replace("_", " ")))
            result.append(figures)
        return result


class NumnetExample(_RunDirective):
    """Run the block's Python code and show it with what it printed and the images it wrote."""

    has_content = True

    def run(self):
        code = "\n".join(self.content)

        def execute(page):
            """None, or the traceback of the example's failure."""
            try:
                exec(compile(code, f"<{self.env.docname} example, line {self.lineno}>", "exec"), page.namespace)
            except Exception as error:
                # The traceback from the example's own frame on (not this directive's).
                return "".join(traceback.format_exception(type(error), error, error.__traceback__.tb_next))
            return None

        text, images, failure = self.run_in_page(execute, ["numnet-example", code])
        if failure:
            raise self.error(f"the example's code failed:\n{text}{failure}")
        source = nodes.literal_block(code, code, language="python")
        source["classes"].append("numnet-example")
        return [source, *self.output_nodes(text, images)]


def _exit_status(main, arguments):
    """``main(arguments)``'s exit status, also when the argument parser ends it with SystemExit."""
    try:
        return main(arguments)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


class NumnetCommand(_RunDirective):
    """Run ``numnet ARGUMENTS`` in-process and show the console session and the images it wrote.

    ``:exit-status: N`` shows a command that is meant to fail (default 0: it must succeed);
    ``:last-lines: N`` shows only the end of a long output.
    """

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"last-lines": directives.positive_int, "exit-status": directives.nonnegative_int}

    def run(self):
        from numnet import cli

        arguments = shlex.split(self.arguments[0])
        expected = self.options.get("exit-status", 0)
        text, images, status = self.run_in_page(lambda page: _exit_status(cli.main, arguments),
                                                ["numnet-command", self.arguments[0], expected])
        if status != expected:
            raise self.error(f"'numnet {self.arguments[0]}' exited with status {status}, not {expected}:\n{text}")
        lines = text.rstrip("\n").splitlines()
        if "last-lines" in self.options and len(lines) > self.options["last-lines"]:
            lines = ["...", *lines[-self.options["last-lines"]:]]
        session = "\n".join([f"$ numnet {self.arguments[0]}", *lines])
        block = nodes.literal_block(session, session, language="console")
        return [block, *self.output_nodes("", images)]


# ---------------------------------------------------------------------------------------------------------
# The API reference


def name_tables(module):
    """The module's name tables: upper-case dicts from names to classes or factories, by name."""
    return {name: value for name, value in vars(module).items()
            if name.isupper() and not name.startswith("_") and isinstance(value, dict) and value
            and all(isinstance(key, str) for key in value) and all(callable(entry) for entry in value.values())}


def public_objects(module):
    """{name: object}: the module's public classes and functions (``__all__`` when it has one)."""
    if hasattr(module, "__all__"):
        return {name: getattr(module, name) for name in module.__all__}
    return {name: value for name, value in vars(module).items()
            # unwrap: a function under functools.lru_cache is still a function of the module
            if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(inspect.unwrap(value)))
            and getattr(value, "__module__", None) == module.__name__}


def documented_constants(module):
    """The module's public constants that carry a ``#:`` doc comment (a threshold, a table of codes)."""
    from sphinx.pycode import ModuleAnalyzer

    names = [name for scope, name in ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
             if scope == "" and not name.startswith("_")]
    return [name for name in names if name not in name_tables(module) and name not in public_objects(module)]


def _own_page_names(own_pages):
    """{id(object): qualified name} for the objects and tables of the modules documented on their own page."""
    names = {}
    for module_name in own_pages:
        module = importlib.import_module(module_name)
        for name, value in {**public_objects(module), **name_tables(module)}.items():
            names[id(value)] = f"{module_name}.{name}"
    return names


def _top_level_names(own):
    """{id(object): "numnet.NAME"} for what the top-level page documents: numnet's exports but ``own``."""
    import numnet

    exported = {name: getattr(numnet, name) for name in numnet.__all__}
    return {id(value): f"numnet.{name}" for name, value in exported.items() if id(value) not in own}


def _home_module(value, candidates):
    """The module that defines ``value``: its ``__module__``, or for a table the candidate module holding it."""
    home = getattr(value, "__module__", None)
    if home is not None and not isinstance(value, dict):
        return home
    for module_name in candidates:
        if any(entry is value for entry in vars(importlib.import_module(module_name)).values()):
            return module_name
    return None


def _autodoc_lines(qualified, value):
    """The autodoc directive documenting one object (a constant with its value, when that is short)."""
    if inspect.isclass(value):
        return [f".. autoclass:: {qualified}", "   :members:", ""]
    if callable(value):
        return [f".. autofunction:: {qualified}", ""]
    options = ["   :no-value:"] if len(repr(value)) > SHORTEST_HIDDEN_VALUE else []
    return [f".. autodata:: {qualified}", *options, ""]


def _name_table_rows(table):
    """(name, what it builds as reST, its summary line) for every entry of a name table."""
    rows = []
    for name, target in sorted(table.items()):
        if target.__name__ == "<lambda>":
            rows.append((name, f"``{_lambda_source(target)}``", ""))
            continue
        summary = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
        if target.__name__.startswith("_"):          # a private helper: named, not linked
            rows.append((name, f"``{target.__qualname__}``", summary))
        else:
            rows.append((name, f":py:obj:`~{target.__module__}.{target.__qualname__}`", summary))
    return rows


def _lambda_source(function):
    """``lambda x, y: x * y`` as written in the table."""
    line = inspect.getsource(function).strip()
    return line[line.index("lambda"):].rstrip(",")


def name_table_lines(qualified_table):
    """reST lines of a list-table: every name of the table, the class or factory it builds, its summary."""
    module_name, table_name = qualified_table.rsplit(".", 1)
    table = getattr(importlib.import_module(module_name), table_name)
    lines = [f".. list-table:: ``{qualified_table}``: {len(table)} names", "   :header-rows: 1",
             "   :widths: 20 35 45", "", "   * - name", "     - builds", "     - what it is"]
    for name, target, summary in _name_table_rows(table):
        lines += [f"   * - ``{name}``", f"     - {target}", f"     - {summary or '-'}"]
    return lines + [""]


class NumnetTable(SphinxDirective):
    """A name table (argument: its qualified name, e.g. numnet.ACTIVATIONS) with every entry.

    The directives of the reference write reStructuredText (autodoc's language) and, in a MyST page, parse
    it as MyST's ``{eval-rst}`` fence does.
    """

    required_arguments = 1

    def run(self):
        return self.parse_rst(name_table_lines(self.arguments[0]))

    def parse_rst(self, lines):
        if self.state.__class__.__module__.startswith("myst_parser"):
            fence = "`" * 5
            lines = [f"{fence}{{eval-rst}}", *lines, fence]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, container)
        return container.children


class NumnetApi(NumnetTable):
    """The reference of one module: its public classes and functions, then its name tables.

    Objects exported at the top level (``numnet.Network``) are documented there, and only linked from their
    module's page, except the objects of the modules in the configuration value
    ``numnet_modules_with_own_page``, which the top-level page only links to.
    """

    required_arguments = 1

    def run(self):
        module = importlib.import_module(self.arguments[0])
        own = _own_page_names(self.config.numnet_modules_with_own_page)
        # What another page documents: the top level's exports (from a module's page), or the objects of the
        # modules with their own page (from the top-level page).
        elsewhere = own if module.__name__ == "numnet" else _top_level_names(own)
        tables = name_tables(module)
        documented, linked = [], {}
        for name, value in {**public_objects(module), **tables}.items():
            if id(value) in elsewhere:
                linked[elsewhere[id(value)]] = True
            elif name not in tables:
                documented.append((name, value))
        lines = [f".. py:currentmodule:: {module.__name__}", "", *self.linked_lines(list(linked))]
        shown_tables = {name: table for name, table in tables.items() if id(table) not in elsewhere}
        for title, names in self.sections(module, [name for name, _ in documented], shown_tables):
            if title:
                lines += [title, "-" * len(title), ""]
            for name in names:
                if name in shown_tables:
                    lines += [f".. py:data:: {name}", ""]
                    lines += ["   " + line for line in name_table_lines(f"{module.__name__}.{name}")]
                else:
                    lines += _autodoc_lines(f"{module.__name__}.{name}", getattr(module, name))
        for name in documented_constants(module):
            lines += _autodoc_lines(f"{module.__name__}.{name}", getattr(module, name))
        return self.parse_rst(lines)

    def sections(self, module, names, tables):
        """[(title, names)]: one untitled section in the source's order, or, for a module listed in the
        configuration value ``numnet_api_sections`` ({module: [(home module, title), ...]}), one section per
        home module, in that order; the names whose home is not listed come last, under "Other"."""
        layout = self.config.numnet_api_sections.get(module.__name__)
        if not layout:
            return [("", [*names, *tables])]
        grouped = {home: [] for home, _ in layout}
        rest = []
        for name in [*names, *tables]:
            grouped.get(_home_module(getattr(module, name), [home for home, _ in layout]), rest).append(name)
        sections = [(title, grouped[home]) for home, title in layout if grouped[home]]
        return sections + ([("Other", rest)] if rest else [])

    @staticmethod
    def linked_lines(linked):
        if not linked:
            return []
        links = ", ".join(f":py:obj:`{qualified}`" for qualified in linked)
        return [f"Documented on their own page: {links}.", ""]


# ---------------------------------------------------------------------------------------------------------
# Source listings and the BP1-BP4 lines


def line_anchor(number):
    """The HTML id of line ``number`` in a numnet-source listing."""
    return f"L-{number}"


class NumnetSource(SphinxDirective):
    """A file of the repository (argument: its path from the repository root), every line anchored and the
    lines with a BP marker highlighted."""

    required_arguments = 1

    def run(self):
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        path = REPOSITORY / self.arguments[0]
        self.env.note_dependency(str(path))
        marked = sorted({line.number for line in marked_lines(self.arguments[0])})
        formatter = HtmlFormatter(linenos="inline", lineanchors="L", anchorlinenos=True, cssclass="highlight",
                                  wrapcode=True, hl_lines=marked)
        html = highlight(path.read_text(encoding="utf-8"), PythonLexer(), formatter)
        return [nodes.raw("", f'<div class="numnet-source highlight-python notranslate">{html}</div>',
                          format="html")]


@dataclasses.dataclass(frozen=True)
class MarkedLine:
    """A line of the source that carries a BP marker, and the code it marks (the same line, or the next)."""

    equation: str
    path: str
    number: int
    function: str
    text: str
    code: str


def marked_lines(path):
    """Every line of ``path`` (relative to the repository) with a ``# BP1``..``# BP4`` marker, in order."""
    source = (REPOSITORY / path).read_text(encoding="utf-8")
    functions = _enclosing_functions(ast.parse(source))
    lines = source.splitlines()
    found = []
    for number, text in enumerate(lines, start=1):
        for equation in dict.fromkeys(BP_MARKER.findall(text)):
            found.append(MarkedLine(equation, path, number, functions.get(number, ""), text.strip(),
                                    _marked_code(lines, number)))
    return found


def _marked_code(lines, number):
    """The code a marker on line ``number`` (1-based) annotates: its own line's, or the next line of code."""
    own = lines[number - 1].split("#", 1)[0].strip()
    if own:
        return own
    for text in lines[number:]:
        if text.strip() and not text.strip().startswith("#"):
            return text.strip()
    return ""


def _enclosing_functions(tree):
    """{line number: "Class.method"} for every line inside a function or method of ``tree``."""
    names = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for number in range(child.lineno, child.end_lineno + 1):
                    names[number] = f"{prefix}{child.name}"
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return names


class NumnetBackpropLines(SphinxDirective):
    """A table of every BP1-BP4 marker in the files of BACKPROP_SOURCES, linked to its line."""

    def run(self):
        table = nodes.table(classes=["numnet-backprop-lines"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (8, 24, 68):
            group += nodes.colspec(colwidth=width)
        group += nodes.thead("", self.heading(["equation", "where", "the comment, and the code it marks"]))
        body = nodes.tbody()
        group += body
        for path, page in BACKPROP_SOURCES.items():
            self.env.note_dependency(str(REPOSITORY / path))
            for line in marked_lines(path):
                body += self.row([line.equation, self.link(line, page), self.marked(line)])
        return [table]

    def link(self, line, page):
        uri = self.env.app.builder.get_relative_uri(self.env.docname, page) + "#" + line_anchor(line.number)
        label = f"{line.path}:{line.number}" + (f" in {line.function}" if line.function else "")
        return nodes.reference(label, label, refuri=uri, internal=True)

    @staticmethod
    def marked(line):
        comment = line.text if line.text.startswith("#") else "#" + line.text.split("#", 1)[1]
        return nodes.literal_block(f"{comment}\n{line.code}", f"{comment}\n{line.code}", language="python")

    def heading(self, titles):
        """The header row, its titles translatable (the gettext builder takes a text that has a source)."""
        row = nodes.row()
        for title in titles:
            paragraph = nodes.paragraph(title, title)
            paragraph.source, paragraph.line = self.get_source_info()
            row += nodes.entry("", paragraph)
        return row

    @staticmethod
    def row(cells):
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, nodes.Element) and not isinstance(cell, nodes.Inline):
                entry += cell
            else:
                entry += nodes.paragraph("", "", cell if isinstance(cell, nodes.Node) else nodes.Text(cell))
            row += entry
        return row


# ---------------------------------------------------------------------------------------------------------
# References by any path


def resolve_any_path(app, env, node, contnode):
    """Resolve a Python reference the domain did not find: by the object it names, or by a unique suffix."""
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    documented = _documented_name(domain, target)
    if documented is None:
        matches = domain.find_obj(env, node.get("py:module"), node.get("py:class"), target, None, 1)
        if len(matches) != 1:
            return None
        documented = matches[0][0]
    entry = domain.objects[documented]
    return _reference(app, node, contnode, entry.docname, entry.node_id, documented)


def _documented_name(domain, target):
    """The documented name of the object ``target`` imports as, or None."""
    module_name, _, attribute = target.rpartition(".")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return None
    for name, entry in domain.objects.items():
        if name.rpartition(".")[2] == attribute and not entry.aliased and _imports_as(name, value):
            return name
    return None


def _imports_as(name, value):
    module_name, _, attribute = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute) is value
    except (ImportError, AttributeError, ValueError):
        return False


def _reference(app, node, contnode, docname, node_id, title):
    from sphinx.util.nodes import make_refnode

    return make_refnode(app.builder, node["refdoc"], docname, node_id, contnode, title)


# ---------------------------------------------------------------------------------------------------------
# Docstrings


def skip_foreign_members(app, what, name, value, skip, options):
    """Leave out members a class inherits from another library (scikit-learn's metadata-routing methods)."""
    module = getattr(value, "__module__", None) or ""
    if what == "class" and module and not module.startswith("numnet"):
        return True
    return None


def report_numpydoc_problems(app, what, name, value, options, lines):
    """A docstring section numpydoc does not know (it only prints a Python warning) becomes a build warning."""
    from numpydoc.docscrape import NumpyDocString

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NumpyDocString("\n".join(lines))
    for warning in caught:
        LOGGER.warning("the docstring of %s does not render as NumPy style: %s", name, warning.message,
                       location=name)


def setup(app):
    app.add_config_value("numnet_modules_with_own_page", [], "env")
    app.add_config_value("numnet_api_sections", {}, "env")
    # A folder where the English build records the examples' runs for the other languages' builds; "" for none.
    app.add_config_value("numnet_example_cache", "", "", types=[str])
    app.connect("autodoc-skip-member", skip_foreign_members)
    # Before numpydoc (priority 500) rewrites the docstring into reST.
    app.connect("autodoc-process-docstring", report_numpydoc_problems, priority=400)
    for name, directive in (("numnet-example", NumnetExample), ("numnet-command", NumnetCommand),
                            ("numnet-api", NumnetApi), ("numnet-table", NumnetTable),
                            ("numnet-source", NumnetSource), ("numnet-backprop-lines", NumnetBackpropLines)):
        app.add_directive(name, directive)
    app.connect("missing-reference", resolve_any_path)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
