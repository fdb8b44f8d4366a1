"""The embedded model zoo: a target/draft Llama pair trained offline on the Python standard library.

Build with ``python -m executor.zoo build`` (``--size smoke`` for the tiny test pair). Models go to
``ssdsim.paths.zoo_dir() / <pair>`` (``embedded`` or ``smoke``), prompt sets to
``ssdsim.paths.prompts_dir()``. Load a built pair with ``executor.loader.resolve_pair``.
Imports torch, transformers and tokenizers; never the executor's runtime.
"""

from executor.zoo.builder import BuiltPair, build, pair_dir, read_built
from executor.zoo.recipe import RECIPES, Recipe

__all__ = ["RECIPES", "BuiltPair", "Recipe", "build", "pair_dir", "read_built"]
