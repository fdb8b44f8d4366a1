"""The training corpus: the Python standard library's own sources, split by file.

Every machine with Python has this corpus, so the embedded pair builds offline. Test suites,
site-packages and generated tables are left out; each file goes to training or held-out by a
hash of its relative path (independent of the seed, so the held-out set never moves).
Imports only the standard library.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import sysconfig
import tokenize
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


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
        ):
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def strip_comments(text: str) -> str:
    """The code without comments and docstrings (at most two blank lines in a row); unparsable text as is.

    Tiny models learn code faster than English prose, and prose is what their greedy loops
    drift into ("the the the"), so the embedded pair can be trained on code alone.
    """
    try:
        docs = _docstring_lines(ast.parse(text))
        comments = {
            t.start[0]: t.start[1]
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.COMMENT
        }
    except (SyntaxError, tokenize.TokenError, ValueError):
        return text
    out: list[str] = []
    blank = 0
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        if n in docs:
            continue
        if n in comments:
            line = line[: comments[n]].rstrip()
            if not line:
                continue
            line += "\n"
        blank = blank + 1 if not line.strip() else 0
        if blank <= 2:
            out.append(line)
    return "".join(out)


def read_sources(names: list[str], root: Path | None = None) -> list[SourceFile]:
    """The files ``names`` (relative to ``root``) as they are on disk."""
    root = root or stdlib_root()
    return [SourceFile(n, (root / n).read_text(encoding="utf-8", errors="replace")) for n in names]


def load_corpus(
    held_out_pct: int,
    max_files: int | None = None,
    root: Path | None = None,
    code_only: bool = False,
) -> Corpus:
    """Read the corpus; ``max_files`` keeps an evenly spaced subset (the smoke build);
    ``code_only`` strips comments and docstrings."""
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
        if code_only:
            text = strip_comments(text)
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
