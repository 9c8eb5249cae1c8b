"""Build the documentation site in every language: English into OUTPUT, Simplified Chinese into OUTPUT/zh_CN.

    python3 docs/_ext/build.py site

Each language is its own strict Sphinx build of the same sources (offline, warnings as errors, every
reference checked). The English build goes first and records the runs of the pages' code in
OUTPUT/.doctrees/example-runs; the Chinese build replays them and only saves the figures again, with Chinese
labels (docs/_ext/numnet_docs.py), so it takes a fraction of the English build's time.
"""

import argparse
import importlib.util
import pathlib
import subprocess
import sys

DOCS = pathlib.Path(__file__).resolve().parents[1]


def site_languages():
    """{language: its folder below the English site}, English ("") first (docs/_ext/translation.py)."""
    spec = importlib.util.spec_from_file_location("translation", DOCS / "_ext" / "translation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {code: folder for code, (_, folder) in module.SITE_LANGUAGES.items()}


def sphinx_commands(output, *, quiet=False):
    """The sphinx-build command lines that build the site into ``output``, one per language, in order."""
    output = pathlib.Path(output).resolve()
    records = output / ".doctrees" / "example-runs"
    return [[sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", *(["-q"] if quiet else []),
             "-D", f"language={language}", "-D", f"numnet_example_cache={records}", str(DOCS), str(output / folder)]
            for language, folder in site_languages().items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", nargs="?", default="site", help="the folder of the English site (default: site)")
    arguments = parser.parse_args()
    for command in sphinx_commands(arguments.output):
        print("+", " ".join(command[1:]), flush=True)
        if subprocess.run(command).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
