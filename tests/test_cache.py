"""Tests of numnet.cache: the compiled kernels keep their machine code in the user's cache folder, never in
the installed package, and a folder that cannot be used costs one warning, not the run.

Each case trains in a fresh interpreter (the kernels are built once per process), with bytecode writing
off there, so that every file the run writes is one the cache made."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import numnet
from numnet.cache import CacheWarning, cache_folder

pytest.importorskip("numba")

PACKAGE = Path(numnet.__file__).resolve().parent

#: A short fit with the compiled kernels required (NUMNET_KERNELS=numba, so that a silent fallback to NumPy
#: cannot pass), then the optimiser kernel's cache statistics as JSON.
TRAIN = """
import json, warnings
import numnet as nn
from numnet.datasets import make_spiral
from numnet import kernels
X, y = make_spiral(n_per_class=20, n_classes=3, seed=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    nn.Network([2, 8, 3], output_activation="softmax", seed=0).fit(X, y, epochs=2, optimizer="adam", seed=0)
compiled = kernels._load()
stats = compiled.adam_step.stats
print(json.dumps({"cache_path": stats.cache_path, "hits": sum(stats.cache_hits.values()),
                  "compiled": sorted(name for name, kernel in compiled.KERNELS.items() if kernel.signatures),
                  "warnings": [f"{type(w.message).__name__}: {w.message}" for w in caught]}))
"""


def package_files():
    return sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*") if path.is_file())


def train_in_a_fresh_interpreter(**environment):
    env = {key: value for key, value in os.environ.items() if key not in ("NUMNET_CACHE_DIR", "NUMBA_CACHE_DIR")}
    env.update(environment, NUMNET_KERNELS="numba", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_compiled_kernels_write_nothing_under_the_package_and_reuse_their_cache(tmp_path):
    before = package_files()
    first = train_in_a_fresh_interpreter(NUMNET_CACHE_DIR=str(tmp_path))
    second = train_in_a_fresh_interpreter(NUMNET_CACHE_DIR=str(tmp_path))
    assert package_files() == before
    assert Path(first["cache_path"]).is_relative_to(tmp_path / "numba")
    assert list((tmp_path / "numba").rglob("*.nbi")), "numba wrote no cache index"
    assert first["hits"] == 0 and second["hits"] > 0  # the second process loads what the first compiled
    assert first["warnings"] == [] and second["warnings"] == []


def test_a_run_compiles_and_caches_only_the_kernels_it_calls(tmp_path):
    # A relu network trained by Adam calls three of the sixteen kernels: the other thirteen (SGD's, GELU's, ...)
    # are neither compiled nor loaded nor written to the cache.
    called = ["adam_step", "bias_relu", "relu_gradient"]
    first = train_in_a_fresh_interpreter(NUMNET_CACHE_DIR=str(tmp_path))
    second = train_in_a_fresh_interpreter(NUMNET_CACHE_DIR=str(tmp_path))
    assert first["compiled"] == called and second["compiled"] == called
    cached = sorted({path.name.split(".")[1].split("-")[0] for path in (tmp_path / "numba").rglob("*.nbi")})
    assert cached == called


def test_numba_cache_dir_is_honoured_when_numnet_has_no_setting(tmp_path):
    result = train_in_a_fresh_interpreter(NUMBA_CACHE_DIR=str(tmp_path))
    assert Path(result["cache_path"]).is_relative_to(tmp_path)


def test_a_cache_folder_under_a_regular_file_compiles_in_memory_with_one_warning(tmp_path):
    regular_file = tmp_path / "not-a-folder"
    regular_file.write_text("a file, so no folder can be made under it")
    before = package_files()
    result = train_in_a_fresh_interpreter(NUMNET_CACHE_DIR=str(regular_file / "cache"))
    assert package_files() == before
    assert result["cache_path"] is None  # numba's cache off: compiled in memory
    assert len(result["warnings"]) == 1 and result["warnings"][0].startswith("CacheWarning")
    assert "not-a-folder" in result["warnings"][0]


def test_cache_folder_names_a_subfolder_of_numnets_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMNET_CACHE_DIR", str(tmp_path))
    folder = cache_folder("numba")
    assert Path(folder) == tmp_path / "numba" and Path(folder).is_dir()


def test_cache_folder_without_platformdirs_or_a_setting_warns_and_gives_none(monkeypatch):
    monkeypatch.delenv("NUMNET_CACHE_DIR", raising=False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # import platformdirs now raises ImportError
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache_folder("numba") is None
    assert [type(w.message) for w in caught] == [CacheWarning]
    assert "NUMNET_CACHE_DIR" in str(caught[0].message)
