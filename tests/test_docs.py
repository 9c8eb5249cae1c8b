"""The documentation cannot drift from the code: the site builds in strict mode and its code runs.

- The site (docs/, Sphinx) is built once, in a temporary folder, with warnings as errors (``-W -n``): a
  broken link, an unresolved reference, a docstring that does not render or a tutorial whose code fails
  or warns stops the build. The built pages are then checked against independent sources: the package's
  public names, the argument parser, the ``# BP`` markers of the source files.
- The README's and the docs' plain Python blocks, and the package docstring's quick start, run here.
- Every ``numnet ...`` command line shown in a shell block parses with the command's own parser.
- The ``>>>`` examples of numnet's docstrings run through pytest's doctest support (``--doctest-modules``,
  pyproject.toml).

Sphinx and its extensions come with the ``docs`` extra (part of ``test``); without them the site tests
skip, except under CI (CI=true), where the extra is always installed.
"""

import argparse
import contextlib
import html
import importlib
import importlib.util
import inspect
import io
import os
import pathlib
import re
import shlex
import subprocess
import sys
import textwrap
import time

import pytest

import numnet
from numnet import cli

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
DOCS = REPOSITORY / "docs"
README = REPOSITORY / "README.md"
# A whole build of the site on this project's 2-core machine takes one to two minutes; ten is a hang.
BUILD_TIMEOUT_SECONDS = 600
SPHINX_PACKAGES = ("sphinx", "myst_parser", "numpydoc", "sphinxarg", "pydata_sphinx_theme")
REFERENCE_MODULES = ("numnet", "numnet.layers", "numnet.conv", "numnet.datasets", "numnet.plots", "numnet.sklearn")
TUTORIALS = ("e01-noisy-line", "e02-xor", "e03-spiral", "e04-digits", "e05-mnist", "e06-numerical-gradients",
             "e07-csv", "e08-initial-weights", "e09-optimisers", "e10-batch-norm", "e11-overfitting", "e12-convolution")
HOW_TO = ("csv", "saving-loading", "checkpoints", "sklearn", "gpu", "mpi", "convolution", "doctor", "onnx",
          "playground")
NAME_TABLES = ("ACTIVATIONS", "LOSSES", "OPTIMIZERS", "SCHEDULES", "INITIALIZERS")
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
BP_MARKER = re.compile(r"#\s*(BP[1-4])\b")


def sphinx_missing():
    """Why the site cannot be built here, or None."""
    for package in SPHINX_PACKAGES:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (pip install -e '.[docs]')"
    return None


def require_sphinx():
    reason = sphinx_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, but .ci/run installs the docs extra")
    pytest.skip(reason)


def sphinx_build(source, output, *extra):
    """Run ``python -m sphinx`` strictly (warnings as errors, every reference checked); the finished process."""
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", *extra, str(source), str(output)]
    return subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS, cwd=REPOSITORY)


def source_files():
    """Every file under docs/ that the build reads or copies, with its modification time."""
    return {path: path.stat().st_mtime_ns for path in DOCS.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once from docs/, in strict mode; the output folder."""
    require_sphinx()
    output = tmp_path_factory.mktemp("site")
    before = source_files()
    started = time.perf_counter()
    build = sphinx_build(DOCS, output)
    seconds = time.perf_counter() - started
    assert build.returncode == 0, f"the strict build failed:\n{build.stdout}\n{build.stderr}"
    assert source_files() == before, "the build wrote into docs/ (it must write only to its output folder)"
    print(f"\nthe documentation site built in {seconds:.0f} s")
    return output


def page_text(site, page):
    """The visible text of a built page's article, tags removed."""
    article = (site / page).read_text(encoding="utf-8")
    article = article[article.index("<article"):article.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", article))


def html_ids(site, page):
    return set(re.findall(r'\bid="([^"]+)"', (site / page).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------------------
# The built site


def test_site_has_every_page(site):
    pages = ["index.html", "getting-started.html", "backpropagation.html", "tutorials/index.html",
             "how-to/index.html", "reference/index.html", "reference/cli.html",
             *(f"tutorials/{name}.html" for name in TUTORIALS), *(f"how-to/{name}.html" for name in HOW_TO),
             *(f"reference/{module.split('.')[-1]}.html" for module in REFERENCE_MODULES),
             "source/network.html", "source/layers.html", "source/conv.html"]
    missing = [page for page in pages if not (site / page).is_file()]
    assert not missing, f"pages missing from the built site: {missing}"


def test_every_tutorial_shows_figures_drawn_while_the_site_built(site):
    for name in TUTORIALS:
        page = (site / "tutorials" / f"{name}.html").read_text(encoding="utf-8")
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        assert images, f"tutorial {name} shows no figure"
        for source in images:
            image = (site / "tutorials" / source).resolve()
            assert image.is_file() and image.stat().st_size > 1000, f"{name}: {source} is missing or empty"
        assert "numnet-output" in page, f"tutorial {name} shows no output of its code"


def test_figures_are_built_not_committed():
    committed = subprocess.run(["git", "ls-files", "docs"], capture_output=True, text=True, cwd=REPOSITORY).stdout.split()
    images = [name for name in committed if name.endswith(".png")]
    screenshots = [name for name in images if re.fullmatch(r"docs/(playground|site)-[a-z0-9-]+\.png", name)]
    assert images == screenshots, f"committed images besides the screenshots: {sorted(set(images) - set(screenshots))}"


def test_site_needs_no_network(site):
    external = []
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        external += [f"{page.relative_to(site)}: {url}" for url in
                     re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', text)]
    assert not external, f"pages load resources from the network: {external[:5]}"


def api_pages():
    """{module name: its page under reference/} for every module the reference documents with ``numnet-api``."""
    pages = {}
    for path in sorted((DOCS / "reference").glob("*.md")):
        for module_name in re.findall(r"^`{3,}\{numnet-api\}\s+(\S+)", path.read_text(encoding="utf-8"), re.M):
            pages[module_name] = f"reference/{path.stem}.html"
    return pages


def public_names(module):
    """The names a user of ``module`` may call: its ``__all__``, and every class or function it defines
    without a leading underscore (a name left out of ``__all__`` is still public to whoever imports it)."""
    defined = [name for name, value in vars(module).items()
               if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(inspect.unwrap(value)))
               and getattr(value, "__module__", None) == module.__name__]
    return list(dict.fromkeys([*getattr(module, "__all__", []), *defined]))


def test_api_reference_documents_every_public_class_function_and_table(site):
    pages = api_pages()
    assert set(REFERENCE_MODULES) <= set(pages), f"no numnet-api page for {set(REFERENCE_MODULES) - set(pages)}"
    ids = set().union(*(html_ids(site, page) for page in pages.values()))
    missing = []
    for module_name in pages:
        module = importlib.import_module(module_name)
        for name in public_names(module):
            value = getattr(module, name)
            # Documented under any name it is reachable by: its own module's, or another reference page's.
            documented = {f"{module_name}.{name}", f"{getattr(value, '__module__', module_name)}.{name}"}
            documented |= {f"{other}.{name}" for other in pages
                           if getattr(importlib.import_module(other), name, None) is value}
            if not documented & ids:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without an entry in the API reference: {missing}"


def test_name_tables_list_every_entry(site):
    text = page_text(site, "reference/numnet.html")
    for table_name in NAME_TABLES:
        table = getattr(numnet, table_name)
        assert f"numnet.{table_name}: {len(table)} names" in text, f"{table_name} is not listed"
        for name in table:
            assert re.search(rf"\b{re.escape(name)}\b", text), f"{table_name}[{name!r}] is not listed"
    layers = page_text(site, "reference/layers.html")
    for name in numnet.LAYERS:
        assert re.search(rf"\b{re.escape(name)}\b", layers), f"LAYERS[{name!r}] is not listed"


def test_cli_reference_lists_every_command_and_option(site):
    text = page_text(site, "reference/cli.html")
    parser = cli.build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for command, subparser in subparsers.choices.items():
        assert re.search(rf"\bnumnet {re.escape(command)}\b", text), f"numnet {command} is missing"
        for action in subparser._actions:
            for option in action.option_strings:
                assert option in text, f"numnet {command} {option} is missing"


def test_backpropagation_links_land_on_the_lines_that_compute_bp1_to_bp4(site):
    page = (site / "backpropagation.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(source/(\w+)\.html)#L-(\d+)"', page)
    found = {}
    for _, module, line in links:
        source_line = (REPOSITORY / "numnet" / f"{module}.py").read_text(encoding="utf-8").splitlines()[int(line) - 1]
        markers = BP_MARKER.findall(source_line)
        assert markers, f"numnet/{module}.py line {line} carries no BP marker: {source_line.strip()}"
        assert f'id="L-{line}"' in (site / "source" / f"{module}.html").read_text(encoding="utf-8")
        for marker in markers:
            found.setdefault(marker, set()).add(module)
    assert set(found) == {"BP1", "BP2", "BP3", "BP4"}
    assert {"network", "layers"} <= found["BP1"] | found["BP2"]
    assert "layers" in found["BP3"] and "layers" in found["BP4"]
    assert "conv" in found["BP3"] and "conv" in found["BP4"]
    engine = ("network", "layers", "conv")
    expected = sum(len(BP_MARKER.findall(text)) > 0 for module in engine
                   for text in (REPOSITORY / "numnet" / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert sum(module in engine for _, module, _ in links) == expected, "a marked line has no link"


def test_backpropagation_page_shows_the_explain_walk_through(site):
    text = page_text(site, "backpropagation.html")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["explain"]) == 0
    assert printed.getvalue().splitlines()[0] in text
    assert "BP4" in text and "FORWARD PASS" in text


def test_getting_started_shows_the_readme_commands_and_quick_start_verbatim():
    readme = README.read_text(encoding="utf-8")
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    readme_blocks = [match["body"] for match in FENCE.finditer(readme)]
    bash = [block.strip() for block, match in zip(readme_blocks, FENCE.finditer(readme)) if match["info"] == "bash"]
    for command in bash[:2]:  # the main job and the tests
        assert command in page, f"getting-started.md lacks the README's command: {command}"
    quick_start = next(match["body"] for match in FENCE.finditer(readme) if match["info"] == "python")
    assert quick_start.strip() in page, "getting-started.md's quick start differs from the README's"


def test_a_failing_example_a_warning_a_broken_link_and_a_broken_docstring_fail_the_build(tmp_path):
    require_sphinx()
    (tmp_path / "broken_module.py").write_text(textwrap.dedent('''
        def documented(x):
            """A docstring whose *emphasis never closes, and a |substitution| nobody defined."""
    '''))
    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text(textwrap.dedent(f'''
        import importlib.util
        extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc"]
        source_suffix = {{".md": "markdown"}}
        autosummary_generate = False

        def setup(app):
            spec = importlib.util.spec_from_file_location("numnet_docs", {str(DOCS / "_ext" / "numnet_docs.py")!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.setup(app)
    '''))
    (source / "index.md").write_text(textwrap.dedent('''
        # A broken page

        ```{numnet-example}
        raise RuntimeError("the tutorial's code is out of date")
        ```

        ```{numnet-example}
        import warnings
        warnings.warn("a deprecated call", DeprecationWarning)
        ```

        A [link to nowhere](missing-page.md) and {py:func}`numnet.no_such_function`.

        ```{eval-rst}
        .. autofunction:: broken_module.documented
        ```
    '''))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPOSITORY),
                                                                os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", str(source), str(tmp_path / "out")]
    build = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS, env=environment)
    log = build.stdout + build.stderr
    assert build.returncode != 0, log
    for problem in ("the tutorial's code is out of date", "DeprecationWarning: a deprecated call", "missing-page.md",
                    "numnet.no_such_function", "Inline emphasis start-string without end-string",
                    "Undefined substitution referenced"):
        assert problem in log, f"the strict build did not report: {problem}\n{log}"


def test_docstrings_of_every_public_class_and_function():
    undocumented = []
    for module_name in (*REFERENCE_MODULES, "numnet.preprocessing", "numnet.experiments", "numnet.doctor",
                        "numnet.lr_finder", "numnet.onnx_export"):
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if (not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
                    and value.__module__ == module_name and not inspect.getdoc(value)):
                undocumented.append(f"{module_name}.{name}")
    assert not undocumented, f"public names without a docstring: {undocumented}"


# ---------------------------------------------------------------------------------------------------------
# Code blocks of the README, the docs and the package docstring


def fenced_blocks(path):
    """(info string, body, line number) of every fenced block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(match["info"].strip(), match["body"], text.count("\n", 0, match.start()) + 1)
            for match in FENCE.finditer(text)]


def markdown_files():
    return [README, *sorted(DOCS.rglob("*.md"))]


def python_blocks():
    """The plain ```python blocks of each Markdown file (README, docs) that has some, as a pytest parameter:
    a file's blocks run in order in one session, as a reader runs them (the README's convolution example
    goes on from its quick start)."""
    files = []
    for path in markdown_files():
        blocks = [body for info, body, _ in fenced_blocks(path) if info in ("python", "py")]
        if blocks:
            files.append(pytest.param(blocks, id=str(path.relative_to(REPOSITORY))))
    return files


def test_docs_python_is_run_either_here_or_by_the_build_or_says_why_not():
    for path in markdown_files():
        for info, body, line in fenced_blocks(path):
            where = f"{path.relative_to(REPOSITORY)}:{line}"
            if info.startswith("{code-block}") and "python" in info:
                assert re.search(r"^:caption: not run\b", body, re.M), f"{where}: a Python block that is not run " \
                                                                     "must say why in its caption"
            elif info.startswith("{") and "python" in info:
                pytest.fail(f"{where}: Python in {info}, which neither the build nor this test runs")


@pytest.mark.parametrize("blocks", python_blocks())
def test_python_blocks_run(blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for number, code in enumerate(blocks, start=1):
        exec(compile(code, f"<python block {number}>", "exec"), namespace)


def test_package_docstring_quick_start_runs(tmp_path, monkeypatch):
    literal_blocks = re.findall(r"::\n\n((?:(?: {4}.*)?\n)+)", numnet.__doc__)
    assert literal_blocks, "numnet's docstring has no quick start"
    monkeypatch.chdir(tmp_path)
    for block in literal_blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(textwrap.dedent(block), "<numnet docstring>", "exec"), {"__name__": "__main__"})
        assert printed.getvalue().strip(), "the quick start printed nothing"


def command_lines():
    """Every ``numnet ...`` command of the README's and the docs' shell blocks, as (where, arguments)."""
    found = []
    for path in markdown_files():
        for info, body, line in fenced_blocks(path):
            if info not in ("bash", "console", "sh", "shell"):
                continue
            for offset, text in enumerate(body.splitlines()):
                for command in text.removeprefix("$ ").split("&&"):
                    words = shlex.split(command, comments=True)
                    if "numnet" in words:
                        found.append((f"{path.relative_to(REPOSITORY)}:{line + 1 + offset}",
                                      words[words.index("numnet") + 1:]))
    return found


def test_every_documented_command_line_parses():
    lines = command_lines()
    assert len(lines) > 20, "the README and the docs show fewer command lines than they do"
    parser = cli.build_parser()
    for where, arguments in lines:
        try:
            with contextlib.redirect_stderr(io.StringIO()) as errors:
                parser.parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{where}: numnet {' '.join(arguments)}: {errors.getvalue().strip()}")


# ---------------------------------------------------------------------------------------------------------
# What the package and the documentation say exists

# A Markdown file named in a text: a bare name or a relative path ending in .md. The look-behind skips URLs
# (a name after "/" or "://" is part of a longer path, which the match then starts from).
CITED_MARKDOWN = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.md)\b")
CITING_FOLDERS = ("numnet", "tests", "docs", "benchmarks")
# The strict-build test above links to this page to see the build fail on it.
DELIBERATELY_MISSING = {"missing-page.md"}
# Extras that install only where their hardware or service is (a GPU, an MPI launcher, a cluster), and the
# developers' own: every other extra is a feature that installs anywhere, so ``all`` must include it.
EXTRAS_OUTSIDE_ALL = {"gpu", "mpi", "dask", "test", "docs", "bench"}


def repository_files(*patterns):
    """The repository's files matching the git ``patterns`` (committed, or new and not ignored)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *patterns],
                            capture_output=True, text=True, cwd=REPOSITORY, check=True).stdout.splitlines()
    return [REPOSITORY / name for name in listed if (REPOSITORY / name).is_file()]


def test_every_cited_markdown_file_exists_in_the_repository():
    existing = repository_files("*.md")
    names = {path.name for path in existing}
    missing = []
    for path in [README, *repository_files(*CITING_FOLDERS)]:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:                  # a binary fixture cites nothing
            continue
        for match in CITED_MARKDOWN.finditer(text):
            cited = match[1]
            # A path is relative to the citing file's folder (a Markdown link) or to the repository (a
            # comment's "docs/tutorials/..."); a bare name may be any file's ("to e03-spiral.md").
            found = ((path.parent / cited).is_file() or (REPOSITORY / cited).is_file()
                     or ("/" not in cited and cited in names) or cited in DELIBERATELY_MISSING)
            if not found:
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{path.relative_to(REPOSITORY)}:{line}: {cited}")
    assert not missing, f"citations of Markdown files the repository does not have: {missing}"


def test_all_extra_installs_every_feature_extra():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    included = set()
    for requirement in extras["all"]:
        # "numnet[plot,sklearn]" names whole extras; any other requirement is a package of its own.
        reference = re.fullmatch(rf"{re.escape(project['name'])}\[([\w,\s-]+)\]", requirement.strip())
        if reference:
            included |= {name.strip() for name in reference[1].split(",")}
    expected = set(extras) - EXTRAS_OUTSIDE_ALL - {"all"}
    assert included == expected, (f"the all extra lacks {sorted(expected - included)} and has "
                                  f"{sorted(included - expected)} beyond the features that install anywhere")
