"""Shared executor fixtures: the smoke model pair, built once per test session.

- ``smoke_build`` (session): builds the tiny ``smoke`` pair (``python -m executor.zoo build
  --size smoke``, seed 0, one thread) into a temporary cache and returns its
  ``executor.zoo.BuiltPair``: ``target_dir``, ``draft_dir``, ``pair_dir``, ``prompt_files``
  (``{"smoke8": Path}``) and ``summary`` (the build's summary.json). Takes a few seconds.
- ``smoke_pair`` (session): the checked ``executor.loader.ModelPair`` of that build (absolute
  directories, parsed configs); no environment variable needed.
- ``smoke_prompts`` (session): the path of the ``smoke8`` prompt set (8 prompts of 16 to 48
  tokens, JSON lines with ``prompt``, ``prompt_ids``, ``pair``); ``Workload(prompts=str(path))``.
- ``smoke_cache`` (per test): points ``SSDSIM_CACHE`` at the build's cache for one test, so
  names resolve: ``resolve_pair("smoke")``, ``Workload(prompts="smoke8")``. Returns the cache root.

Treat the built files as read-only: copy them (``shutil.copytree``) before changing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    pytest.importorskip("transformers")
    from executor.zoo import build

    cache = tmp_path_factory.mktemp("ssdsim_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSDSIM_CACHE", str(cache))
        return build("smoke", seed=0, threads=1)


@pytest.fixture(scope="session")
def smoke_pair(smoke_build):
    from executor.loader import resolve_pair

    return resolve_pair(str(smoke_build.pair_dir))


@pytest.fixture(scope="session")
def smoke_prompts(smoke_build) -> Path:
    return smoke_build.prompt_files["smoke8"]


@pytest.fixture
def smoke_cache(smoke_build, monkeypatch) -> Path:
    cache = smoke_build.pair_dir.parent.parent  # <cache>/zoo/smoke
    monkeypatch.setenv("SSDSIM_CACHE", str(cache))
    return cache
