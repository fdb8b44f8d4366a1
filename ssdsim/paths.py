"""Where ssdsim and the executor keep files that outlive a run: built models, prompt sets, studies.

Everything lives under one user cache directory, ``$SSDSIM_CACHE`` if set, else
``$XDG_CACHE_HOME/ssdsim`` (normally ``~/.cache/ssdsim``). Pure standard library.

Layout::

    <cache>/zoo/<pair>/target/      Hugging Face directory of the embedded target model
    <cache>/zoo/<pair>/draft/       ... and of its draft
    <cache>/prompts/<name>.jsonl    prompt sets, one {"prompt_ids": [...], "prompt": "..."} per line
    <cache>/studies/                Optuna studies (``optimize.journal``)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of everything ssdsim stores between runs."""
    env = os.environ.get("SSDSIM_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ssdsim"


def zoo_dir() -> Path:
    return cache_dir() / "zoo"


def prompts_dir() -> Path:
    return cache_dir() / "prompts"


def studies_dir() -> Path:
    return cache_dir() / "studies"
