"""Keep the Chinese site's gettext catalogues (docs/locale/zh_CN/LC_MESSAGES/PAGE.po) in step with the English.

    python3 docs/_ext/catalogues.py                       # after a change to an English page
    python3 docs/_ext/catalogues.py tutorials/e03-spiral  # also start (or update) the catalogue of a page

Sphinx's gettext builder writes the message templates (.pot) of the English sources, replaying the runs of
the pages' code that the English site's build in site/ recorded (``--records``), when it did, rather than
running the code again; then sphinx-intl creates or updates the catalogue of every page that docs/conf.py
lists as translated
(``numnet_translated_pages``, and the pages matching ``numnet_translated_titles``) and of each page named. A
changed English message comes back fuzzy, with the old translation to start from; a new one comes back empty.
``sphinx-intl stat -d docs/locale`` then counts each catalogue's translated, fuzzy and untranslated messages.
"""

import argparse
import fnmatch
import pathlib
import runpy
import shutil
import subprocess
import sys
import tempfile

DOCS = pathlib.Path(__file__).resolve().parents[1]
LANGUAGE = "zh_CN"
LOCALE = DOCS / "locale"


def write_templates(output, records=None):
    """Write the .pot file of every page of the English sources into ``output``, replaying the runs of the
    pages' code recorded in the folder ``records`` (docs/_ext/numnet_docs.py)."""
    command = [sys.executable, "-m", "sphinx", "-b", "gettext", "-W", "--keep-going", "-q", str(DOCS), str(output)]
    if records is not None:
        command[3:3] = ["-D", f"numnet_example_cache={pathlib.Path(records).resolve()}"]
    subprocess.run(command, check=True)


def catalogued_pages(templates, named=()):
    """The pages whose catalogues the repository keeps, each named by its path below ``templates``, no suffix."""
    configuration = runpy.run_path(str(DOCS / "conf.py"))
    pages = [path.relative_to(templates).with_suffix("").as_posix() for path in sorted(templates.rglob("*.pot"))]
    wanted = {*configuration["numnet_translated_pages"], *named}
    for pattern in configuration["numnet_translated_titles"]:
        wanted |= set(fnmatch.filter(pages, pattern))
    unknown = wanted - set(pages)
    if unknown:
        raise SystemExit(f"no such page: {', '.join(sorted(unknown))} (a page is named by its path below docs/, "
                         "without .md, e.g. tutorials/e03-spiral)")
    return sorted(wanted)


def update_catalogues(templates, pages):
    """Create or update the catalogues of ``pages`` from their templates with sphinx-intl."""
    with tempfile.TemporaryDirectory(prefix="numnet-pot-") as chosen:
        for page in pages:
            target = pathlib.Path(chosen) / f"{page}.pot"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(templates / f"{page}.pot", target)
        # One message a line (-w 0), so that an English edit changes the lines of the messages it changes.
        subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", chosen, "-d", str(LOCALE),
                        "-l", LANGUAGE, "-w", "0", "--no-obsolete"], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", help="pages to start or update besides the listed ones, e.g. "
                                                 "tutorials/e03-spiral")
    parser.add_argument("--records", type=pathlib.Path, default=pathlib.Path("site/.doctrees/example-runs"),
                        help="the runs recorded by the English site's build, replayed when the folder exists "
                             "(default: site/.doctrees/example-runs, where docs/_ext/build.py site puts them)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="numnet-gettext-") as output:
        templates = pathlib.Path(output)
        write_templates(templates, arguments.records if arguments.records.is_dir() else None)
        update_catalogues(templates, catalogued_pages(templates, arguments.pages))


if __name__ == "__main__":
    main()
