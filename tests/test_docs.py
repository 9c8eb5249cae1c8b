"""The documentation cannot drift from the code: the site builds in strict mode and its code runs.

- The site (docs/, Sphinx) is built once, in a temporary folder, with warnings as errors (``-W -n``): a
  broken link, an unresolved reference, a docstring that does not render or a tutorial whose code fails
  or warns stops the build. The built pages are then checked against independent sources: the package's
  public names, the argument parser, the ``# BP`` markers of the source files.
- The Chinese site is built from the same sources as strictly, by the commands of docs/_ext/build.py, and
  checked against the English one (the same code and output, a link between each page and its
  counterpart), against its catalogues (every message of a translated page translated, the catalogues in
  step with the English sources) and against the glossary's terms.
- The README's and the docs' plain Python blocks, and the package docstring's quick start, run here.
- Every ``numnet ...`` command line shown in a shell block parses with the command's own parser.
- The ``>>>`` examples of numnet's docstrings run through pytest's doctest support (``--doctest-modules``,
  pyproject.toml).

Sphinx and its extensions come with the ``docs`` extra (part of ``test``); without them the site tests
skip, except under CI (CI=true), where the extra is always installed.
"""

import argparse
import contextlib
import fnmatch
import functools
import html
import importlib
import importlib.util
import inspect
import io
import os
import pathlib
import re
import runpy
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
             "e07-csv", "e08-initial-weights", "e09-optimisers", "e10-batch-norm", "e11-overfitting", "e12-convolution",
             "e13-language-models", "e14-seq2seq", "e15-attention", "e16-gpt")
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


def docs_extension(name):
    """The module docs/_ext/NAME.py."""
    spec = importlib.util.spec_from_file_location(name, DOCS / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_language(output, index, name):
    """Run the ``index``-th command of docs/_ext/build.py (0: English into ``output``, 1: Chinese below it),
    strictly, and check that it wrote nothing into docs/."""
    command = docs_extension("build").sphinx_commands(output, quiet=True)[index]
    before = source_files()
    started = time.perf_counter()
    build = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS, cwd=REPOSITORY)
    seconds = time.perf_counter() - started
    assert build.returncode == 0, f"the strict build of the {name} site failed:\n{build.stdout}\n{build.stderr}"
    assert source_files() == before, "the build wrote into docs/ (it must write only to its output folder)"
    print(f"\nthe {name} documentation site built in {seconds:.0f} s")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once from docs/, in strict mode; the output folder."""
    require_sphinx()
    output = tmp_path_factory.mktemp("site")
    build_language(output, 0, "English")
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


def external_resources(site):
    """'page: URL' of every script, style sheet or image that a page of ``site`` loads from the network."""
    external = []
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        external += [f"{page.relative_to(site)}: {url}" for url in
                     re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', text)]
    return external


def test_site_needs_no_network(site):
    external = external_resources(site)
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


# ---------------------------------------------------------------------------------------------------------
# The Chinese site

CHINESE = "zh_CN"
CATALOGUES = DOCS / "locale" / CHINESE / "LC_MESSAGES"
HAN = re.compile(r"[\u4e00-\u9fff]")
# The Chinese screenshots, beside the English ones (docs/_ext/screenshot.py; docs/locale/README.md says how).
CHINESE_SCREENSHOTS = ("docs/site-getting-started-zh-cn.png", "docs/site-tutorial-zh-cn.png", "docs/site-figure-zh-cn.png")
# Inline code, a role's target, a link's target and a URL: names, not words of the text.
NOT_WORDS = re.compile(r"(\{[\w:-]+\})?`[^`]*`|\]\([^)]*\)|https?://\S+")


@functools.lru_cache(maxsize=None)
def configuration():
    """The names docs/conf.py defines."""
    return runpy.run_path(str(DOCS / "conf.py"))


def translated_pages():
    """The pages the configuration lists as translated in full."""
    return configuration()["numnet_translated_pages"]


def title_pages():
    """The pages whose section titles alone are translated (the API reference), from the sources."""
    pages = [path.relative_to(DOCS).with_suffix("").as_posix() for path in sorted(DOCS.rglob("*.md"))]
    chosen = set()
    for pattern in configuration()["numnet_translated_titles"]:
        chosen |= {page for page in pages if fnmatch.fnmatchcase(page, pattern)}
    return sorted(chosen - set(translated_pages()))


def catalogue(page):
    """The Chinese catalogue of ``page`` (babel's Catalog)."""
    from babel.messages.pofile import read_po

    path = CATALOGUES / f"{page}.po"
    assert path.is_file(), f"{page} has no catalogue: python3 docs/_ext/catalogues.py {page}"
    with path.open("rb") as stream:
        return read_po(stream)


def messages(page):
    """``page``'s catalogue: {"all": {msgid: msgstr}, "fuzzy": [msgid of each fuzzy message]}."""
    entries = [message for message in catalogue(page) if message.id]
    return {"fuzzy": [message.id for message in entries if message.fuzzy],
            "all": {message.id: message.string for message in entries}}


def require_chinese_font():
    """Skip (fail under CI) when no font that renders Chinese is installed for matplotlib."""
    from numnet import plot_labels

    pytest.importorskip("matplotlib")
    if plot_labels.font_family(CHINESE) is None:
        reason = f"no font renders Chinese (one of {plot_labels.ZH_CN_FONTS}; Debian: fonts-wqy-microhei)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, but .ci/run installs one")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def chinese_site(site):
    """The Chinese site, built after the English one (whose runs of the pages' code it replays) below it."""
    require_chinese_font()
    build_language(site, 1, "Chinese")
    return site / CHINESE


def pre_blocks(site, page):
    """The text of every code block and output of a built page, in order."""
    article = (site / page).read_text(encoding="utf-8")
    return [html.unescape(re.sub(r"<[^>]+>", "", block)) for block in re.findall(r"<pre[^>]*>(.*?)</pre>", article, re.S)]


def html_pages(site):
    """Every page of a built site (not its static files, nor the pages of the site below it), relative to it."""
    return sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html")
                  if not {CHINESE, "_static"} & set(path.relative_to(site).parts[:-1]))


def test_every_page_links_to_the_same_page_in_the_other_language(site, chinese_site):
    for here, there in ((site, chinese_site), (chinese_site, site)):
        pages = html_pages(here)
        assert len(pages) > 50
        for page in pages:
            links = re.findall(r'<a class="[^"]*numnet-language-switch[^"]*" href="([^"]+)"',
                               (here / page).read_text(encoding="utf-8"))
            # The navigation bar's items are also in the narrow screen's sidebar: one link, perhaps twice.
            assert links and len(set(links)) == 1, f"{here / page}: language switches {links}"
            target = ((here / page).parent / links[0]).resolve()
            assert target == (there / page).resolve() and target.is_file(), f"{page} links to {links[0]}"


def test_translated_pages_are_chinese_and_the_rest_are_there(site, chinese_site):
    assert html_pages(chinese_site) == html_pages(site)
    for page in translated_pages():
        text = page_text(chinese_site, f"{page}.html")
        assert len(HAN.findall(text)) > 50, f"{page} is not in Chinese"
    page = (chinese_site / "index.html").read_text(encoding="utf-8")
    start = page.index("bd-navbar-elements")
    navigation = page[start:page.index("</nav>", start)]
    for title in ("快速入门", "教程", "反向传播", "操作指南", "API 参考"):
        assert title in navigation, f"the navigation bar lacks {title}"


def test_api_reference_titles_are_chinese(chinese_site):
    for page in [*title_pages(), "reference/index"]:
        text = (chinese_site / f"{page}.html").read_text(encoding="utf-8")
        titles = [html.unescape(re.sub(r"<[^>]+>", "", title)) for title in re.findall(r"<h1>(.*?)</h1>", text, re.S)]
        assert titles and all(HAN.search(title) for title in titles), f"{page}: {titles}"
    sections = re.findall(r"<h2>(.*?)<a", (chinese_site / "reference/numnet.html").read_text(encoding="utf-8"), re.S)
    # One per home module of numnet_api_sections, and "Other" for the names whose home it does not list.
    assert len(sections) >= len(configuration()["numnet_api_sections"]["numnet"])
    assert all(HAN.search(section) for section in sections), sections


def test_chinese_pages_show_the_english_pages_code_and_output(site, chinese_site):
    for page in translated_pages():
        english = pre_blocks(site, f"{page}.html")
        assert pre_blocks(chinese_site, f"{page}.html") == english, f"{page}: the code or its output differs"
    figures = {language: sorted((folder / "_images").glob("*.png")) for language, folder in
               (("en", site), (CHINESE, chinese_site))}
    assert [path.name for path in figures["en"]] == [path.name for path in figures[CHINESE]]
    relabelled = [path.name for path in figures[CHINESE] if path.read_bytes() != (site / "_images" / path.name).read_bytes()]
    assert "training.png" in relabelled, "the figures of getting started were not drawn again with Chinese labels"


def test_chinese_site_needs_no_network(chinese_site):
    external = external_resources(chinese_site)
    assert not external, f"pages load resources from the network: {external[:5]}"


def test_every_message_of_the_translated_pages_is_translated():
    untranslated = []
    for page in [*translated_pages(), *title_pages()]:
        found = messages(page)
        untranslated += [f"{page}: fuzzy: {text[:60]!r}" for text in found["fuzzy"]]
        untranslated += [f"{page}: {text[:60]!r}" for text, translation in found["all"].items() if not translation.strip()]
    assert not untranslated, "messages without a translation (docs/locale/README.md):\n" + "\n".join(untranslated)


def test_a_message_without_translation_fails_the_chinese_build(tmp_path):
    """On a translated page, a message new or changed in English, or fuzzy, fails the strict Chinese build
    (docs/_ext/translation.py); the catalogue is read from a copy, so the build writes nothing beside it."""
    require_sphinx()
    source = tmp_path / "source"
    catalogues = source / "locale" / CHINESE / "LC_MESSAGES"
    catalogues.mkdir(parents=True)
    (source / "conf.py").write_text(textwrap.dedent(f'''
        import importlib.util
        extensions = ["myst_parser"]
        source_suffix = {{".md": "markdown"}}
        locale_dirs = ["locale"]
        gettext_compact = False
        numnet_translated_pages = ["index"]

        def setup(app):
            spec = importlib.util.spec_from_file_location("translation", {str(DOCS / "_ext" / "translation.py")!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.setup(app)
    '''))
    (source / "index.md").write_text("# A page\n\nTranslated.\n\nChanged in English.\n\nFuzzy.\n", encoding="utf-8")
    (catalogues / "index.po").write_text(textwrap.dedent('''
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=UTF-8\\n"

        msgid "A page"
        msgstr "一页"

        msgid "Translated."
        msgstr "已翻译。"

        msgid "Changed."
        msgstr "改过。"

        #, fuzzy
        msgid "Fuzzy."
        msgstr "模糊。"
    '''), encoding="utf-8")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-D", f"language={CHINESE}", str(source),
               str(tmp_path / "out")]
    build = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
    log = build.stdout + build.stderr
    assert build.returncode != 0, log
    untranslated = re.findall(r"a message without a translation in \S+index\.po .*?: '([^']+)'", log)
    assert sorted(untranslated) == ["Changed in English.", "Fuzzy."], log
    assert sorted(path.name for path in catalogues.iterdir()) == ["index.po"], "the build wrote beside the catalogue"


def glossary():
    """[(English term, Chinese term)] of docs/glossary.md's tables, a term per spelling ("optimiser / optimizer")."""
    terms = []
    for row in re.findall(r"^\| (.+?) \| (.+?) \|", (DOCS / "glossary.md").read_text(encoding="utf-8"), re.M):
        english, chinese = (cell.strip() for cell in row)
        if chinese not in ("中文", "---"):
            terms += [(spelling.strip(), chinese) for spelling in english.split(" / ")]
    return terms


def test_translations_use_the_glossary_terms():
    terms = sorted(glossary(), key=lambda term: -len(term[0]))   # the longest first: "weight decay" before "weight"
    assert len(terms) > 40
    wrong = []
    for page in translated_pages():
        if page == "glossary":      # its English column is the terms themselves
            continue
        for english, chinese in messages(page)["all"].items():
            words = NOT_WORDS.sub(" ", english)
            for term, term_in_chinese in terms:
                pattern = re.compile(rf"\b{re.escape(term)}(s|es)?\b", re.I)
                if pattern.search(words):
                    if term_in_chinese not in chinese:
                        wrong.append(f"{page}: {term!r} without {term_in_chinese!r}: {chinese[:80]!r}")
                    words = pattern.sub(" ", words)
    assert not wrong, "translations that do not use the glossary's terms:\n" + "\n".join(wrong)


def test_chinese_screenshots_are_committed_beside_the_english_ones():
    matplotlib_image = pytest.importorskip("matplotlib.image")
    screenshot = docs_extension("screenshot")
    for name in CHINESE_SCREENSHOTS:
        path = REPOSITORY / name
        assert path.is_file(), f"{name} is missing (docs/locale/README.md says how to take it)"
        pixels = matplotlib_image.imread(path)
        assert pixels.shape[1] == screenshot.WIDTH, f"{name} is not a screenshot of the site's width"
        colours = len(set(map(tuple, pixels.reshape(-1, pixels.shape[2])[::97].round(2).tolist())))
        assert colours > 20, f"{name} is blank or nearly so ({colours} colours)"


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

        ```{numnet-example}
        from numnet import plots
        plots.plot_regression([[0.0], [1.0]], [0.0, 1.0], path="glyphs.png", title="\u4e2d\u6587")
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
                    "Undefined substitution referenced", "missing from font"):
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


def citing_folder(path):
    """The folder a file's relative links start from: its own, or for a translation catalogue
    (docs/locale/LANGUAGE/LC_MESSAGES/how-to/csv.po) its page's (docs/how-to)."""
    parts = path.relative_to(REPOSITORY).parts
    if path.suffix == ".po" and parts[:2] == ("docs", "locale") and parts[3:4] == ("LC_MESSAGES",):
        return DOCS.joinpath(*parts[4:]).parent
    return path.parent


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
            # A path is relative to the citing file's folder (a Markdown link; a catalogue's links are its
            # page's) or to the repository (a comment's "docs/tutorials/..."); a bare name may be any file's
            # ("to e03-spiral.md").
            found = ((citing_folder(path) / cited).is_file() or (REPOSITORY / cited).is_file()
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
