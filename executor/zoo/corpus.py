"""The training corpus: the Python standard library's own sources, split by file.

Every machine with Python has this corpus, so the embedded pair builds offline. Test suites,
site-packages and generated tables are left out; each file goes to training or held-out by a
hash of its relative path (independent of the seed, so the held-out set never moves).
Imports only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Folders whose files are never read: tests (their code is mostly data and asserts) and
# installed third-party packages.
SKIP_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
)
# Generated tables and documentation held in strings: long runs of near-identical lines that
# teach a small model to loop, and build configuration. Names relative to the stdlib root.
SKIP_TOP = frozenset({"encodings", "pydoc_data"})
SKIP_FILES = frozenset({"html/entities.py"})


@dataclass(frozen=True)
class SourceFile:
    """One source file: its path relative to the stdlib root and its text."""

    name: str
    text: str


@dataclass(frozen=True)
class Corpus:
    train: tuple[SourceFile, ...]
    held_out: tuple[SourceFile, ...]

    @property
    def train_chars(self) -> int:
        return sum(len(f.text) for f in self.train)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _skipped(rel: Path) -> bool:
    parts = rel.parts
    if SKIP_DIRS & set(parts[:-1]):
        return True
    if (
        parts[0] in SKIP_TOP
        or parts[0].startswith("config-")
        or parts[0].startswith("_sysconfigdata")
    ):
        return True
    return rel.as_posix() in SKIP_FILES or parts[-1].startswith("test_")


def list_sources(root: Path | None = None) -> list[Path]:
    """Relative paths of the corpus files under ``root`` (default: this Python's stdlib), sorted."""
    root = root or stdlib_root()
    rels: list[Path] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]  # prune: site-packages can be huge
        base = Path(here).relative_to(root)
        rels.extend(base / f for f in files if f.endswith(".py"))
    return sorted((r for r in rels if not _skipped(r)), key=lambda r: r.as_posix())


def is_held_out(name: str, held_out_pct: int) -> bool:
    """Deterministic split by file: a hash of the relative path, not the seed."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 100
    return bucket < held_out_pct


def load_corpus(
    held_out_pct: int, max_files: int | None = None, root: Path | None = None
) -> Corpus:
    """Read the corpus; ``max_files`` keeps an evenly spaced subset (the smoke build)."""
    root = root or stdlib_root()
    rels = list_sources(root)
    if not rels:
        raise FileNotFoundError(f"no Python sources found under {root}")
    if max_files is not None and max_files < len(rels):
        stride = len(rels) / max_files
        rels = [rels[int(i * stride)] for i in range(max_files)]
    train: list[SourceFile] = []
    held: list[SourceFile] = []
    for rel in rels:
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            continue
        f = SourceFile(rel.as_posix(), text)
        (held if is_held_out(f.name, held_out_pct) else train).append(f)
    if not train or not held:
        raise ValueError(
            f"corpus split left {len(train)} training and {len(held)} held-out files; "
            "use more files or another held_out_pct"
        )
    return Corpus(tuple(train), tuple(held))
