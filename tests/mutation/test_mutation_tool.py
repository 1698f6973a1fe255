"""The mutation runner's own rules: stable ids, one mutant applied, noise left alone."""

from __future__ import annotations

import ast

from tools.mutate import ROOT, load_equivalents, load_targets
from tools.mutation import apply_mutant, enumerate_mutants

SOURCE = '''
"""Docstring."""
import logging

log = logging.getLogger(__name__)
__all__ = ["f"]


def f(x: int = 3) -> bool:
    """Docstring."""
    assert isinstance(x, int)
    log.debug("x is %d", 5)
    if x >= 0 and x != 7:
        raise ValueError(f"bad {x + 1}")
    return max(x, 2) > 1
'''


def _ids(source: str) -> dict[str, str]:
    return {m.id: m.describe().split(": ", 1)[1] for m in enumerate_mutants(source)}


def test_mutants_of_a_small_function() -> None:
    described = sorted(_ids(SOURCE).values())
    assert described == sorted(
        [
            "3  ->  4",
            "x >= 0  ->  x > 0",
            "0  ->  1",
            "x != 7  ->  x == 7",
            "7  ->  8",
            "x >= 0 and x != 7  ->  x >= 0 or x != 7",
            "raise ValueError(f'bad {x + 1}')  ->  pass",
            "if x >= 0 and x != 7:  ->  if not (x >= 0 and x != 7):",
            "if x >= 0 and x != 7:  ->  pass",
            "2  ->  3",
            "max(x, 2)  ->  min(x, 2)",
            "max(x, 2) > 1  ->  max(x, 2) >= 1",
            "1  ->  2",
        ]
    ), "docstrings, __all__, asserts, log calls and f-strings are never mutated"


def test_ids_do_not_depend_on_line_numbers() -> None:
    shifted = SOURCE.replace("import logging", "import logging\nimport os\n\n\nY = os.sep")
    assert set(_ids(SOURCE)) <= set(_ids(shifted))


def test_apply_changes_exactly_one_node() -> None:
    mutants = enumerate_mutants(SOURCE)
    original = ast.unparse(ast.parse(SOURCE))
    for m in mutants:
        mutated = ast.unparse(apply_mutant(SOURCE, m.index))
        assert mutated != original, m
        compile(apply_mutant(SOURCE, m.index), "<m>", "exec")
    swap = next(m for m in mutants if m.operator == "call")
    assert "min(x, 2) > 1" in ast.unparse(apply_mutant(SOURCE, swap.index))


def test_targets_and_equivalents_name_real_modules_and_mutants() -> None:
    targets = load_targets()
    for module, reasons in load_equivalents().items():
        assert module in targets, module
        source = targets[module].source.read_text(encoding="utf-8")
        ids = {m.id for m in enumerate_mutants(source)}
        assert set(reasons) <= ids, f"stale ids in equivalent.toml for {module}"
    for target in targets.values():
        for arg in target.tests:
            if arg.startswith("tests/"):
                assert (ROOT / arg.split("::")[0]).exists(), arg
