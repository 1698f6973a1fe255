"""AST mutants of one Python module: deterministic enumeration, stable ids, one mutant applied.

A mutant id is ``<qualified function>:<operator>:<hash>``, the hash over the original and the
mutated code of the node and how often that same change occurred before in the same function. It
does not depend on line numbers, so an edit elsewhere in the module keeps the ids (and the
equivalents file) valid; an edit of the mutated expression itself retires its ids on purpose.

Not mutated, because every change there is either invisible or noise: docstrings, string constants
and f-strings (messages), annotations, decorators, ``assert`` statements (type narrowing for mypy),
logging calls and ``__all__``.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Mutant", "apply_mutant", "enumerate_mutants"]

_LOG_NAMES = frozenset({"log", "logger", "logging", "_log", "LOG"})

_CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BIN_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
_CALL_SWAP = {"min": "max", "max": "min", "any": "all", "all": "any"}


@dataclass(frozen=True, slots=True)
class Mutant:
    """One mutation point of a module."""

    id: str
    index: int
    line: int
    operator: str
    before: str
    after: str

    def describe(self) -> str:
        return f"line {self.line}: {self.before}  ->  {self.after}"


Make = Callable[[], ast.AST]


class _Walker(ast.NodeTransformer):
    """Numbers every mutation point in a fixed order; applies the one numbered ``target``."""

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.found: list[Mutant] = []
        self._scope: list[str] = []
        self._seen: Counter[tuple[str, str, str, str]] = Counter()
        self._count = 0

    # -- scopes and what is never mutated -------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        self._scope.append(node.name)
        node.args.defaults = [self._expr(d) for d in node.args.defaults]
        node.args.kw_defaults = [
            None if d is None else self._expr(d) for d in node.args.kw_defaults
        ]
        node.body = self._block(node.body)
        self._scope.pop()
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._scope.append(node.name)
        node.body = self._block(node.body)
        self._scope.pop()
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self._expr(node.value)
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return node
        return self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node

    def visit_Import(self, node: ast.Import) -> ast.AST:
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        return node

    def _expr(self, node: ast.expr) -> ast.expr:
        out = self.visit(node)
        assert isinstance(out, ast.expr)
        return out

    def _block(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for i, stmt in enumerate(body):
            docstring = (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            )
            if docstring:
                out.append(stmt)
                continue
            new = self.visit(stmt)
            assert isinstance(new, ast.stmt)
            out.append(new)
        return out

    def generic_visit(self, node: ast.AST) -> ast.AST:
        # Blocks go through _block so that docstrings are recognised everywhere.
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, name, self._block(value))
        for name, value in ast.iter_fields(node):
            block = name in ("body", "orelse", "finalbody") and isinstance(value, list)
            if block and value and isinstance(value[0], ast.stmt):
                continue
            if isinstance(value, list):
                new_items: list[ast.AST] = []
                for item in value:
                    if isinstance(item, ast.AST):
                        new = self.visit(item)
                        if isinstance(new, ast.AST):
                            new_items.append(new)
                    else:
                        new_items.append(item)
                setattr(node, name, new_items)
            elif isinstance(value, ast.AST):
                setattr(node, name, self.visit(value))
        return node

    # -- mutation points ------------------------------------------------------------------
    def _offer(self, node: ast.AST, operator: str, make: Make) -> ast.AST | None:
        """Register one mutation of ``node``; return the replacement if it is the target."""
        index = self._count
        self._count += 1
        if self.target is None:
            replacement = make()
            before = _text(node)
            after = _text(replacement)
            scope = ".".join(self._scope) or "<module>"
            key = (scope, operator, before, after)
            occurrence = self._seen[key]
            self._seen[key] += 1
            digest = hashlib.sha1(
                f"{before}\x00{after}\x00{occurrence}".encode(), usedforsecurity=False
            ).hexdigest()[:8]
            self.found.append(
                Mutant(
                    id=f"{scope}:{operator}:{digest}",
                    index=index,
                    line=getattr(node, "lineno", 0),
                    operator=operator,
                    before=_short(before),
                    after=_short(after),
                )
            )
            return None
        if index == self.target:
            return make()
        return None

    def _finish(self, node: ast.AST, offers: list[tuple[str, Make]]) -> ast.AST:
        chosen: ast.AST | None = None
        for operator, make in offers:
            replacement = self._offer(node, operator, make)
            if replacement is not None:
                chosen = replacement
        if chosen is None:
            return node
        return ast.copy_location(chosen, node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        offers: list[tuple[str, Make]] = []
        for i, op in enumerate(node.ops):
            swap = _CMP_SWAP.get(type(op))
            if swap is None:
                continue

            def make(i: int = i, swap: type[ast.cmpop] = swap) -> ast.AST:
                new = copy.deepcopy(node)
                new.ops[i] = swap()
                return new

            offers.append(("compare", make))
        return self._finish(node, offers)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)

        def make() -> ast.AST:
            new = copy.deepcopy(node)
            new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            return new

        return self._finish(node, [("boolop", make)])

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return self._finish(node, [("drop-not", lambda: copy.deepcopy(node.operand))])
        if isinstance(node.op, ast.USub):
            return self._finish(node, [("drop-minus", lambda: copy.deepcopy(node.operand))])
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = _BIN_SWAP.get(type(node.op))
        if swap is None:
            return node

        def make() -> ast.AST:
            new = copy.deepcopy(node)
            new.op = swap()
            return new

        return self._finish(node, [("arith", make)])

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        offers: list[tuple[str, Make]] = [("delete", lambda: ast.Pass())]
        swap = _BIN_SWAP.get(type(node.op))
        if swap is not None:

            def make() -> ast.AST:
                new = copy.deepcopy(node)
                new.op = swap()
                return new

            offers.insert(0, ("arith", make))
        return self._finish(node, offers)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            return self._finish(node, [("constant", lambda: ast.Constant(not value))])
        if isinstance(value, int):
            return self._finish(node, [("constant", lambda: ast.Constant(value + 1))])
        if isinstance(value, float):
            return self._finish(node, [("constant", lambda: ast.Constant(value + 1.0))])
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _is_log_call(node):
            return node
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in _CALL_SWAP:
            other = _CALL_SWAP[node.func.id]

            def make() -> ast.AST:
                new = copy.deepcopy(node)
                new.func = ast.Name(id=other, ctx=ast.Load())
                return new

            return self._finish(node, [("call", make)])
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        self.generic_visit(node)
        return self._finish(
            node, [("negate", lambda: _negated(node)), ("delete", lambda: ast.Pass())]
        )

    def visit_While(self, node: ast.While) -> ast.AST:
        self.generic_visit(node)
        return self._finish(node, [("negate", lambda: _negated(node))])

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        return self._finish(node, [("negate", lambda: _negated(node))])

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if isinstance(node.value, ast.Call) and _is_log_call(node.value):
            return node
        self.generic_visit(node)
        if isinstance(node.value, ast.Call | ast.Await):
            return self._finish(node, [("delete", lambda: ast.Pass())])
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        self.generic_visit(node)
        return self._finish(node, [("delete", lambda: ast.Pass())])

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        return self._finish(node, [("swap-loop", lambda: ast.Break())])

    def visit_Break(self, node: ast.Break) -> ast.AST:
        return self._finish(node, [("swap-loop", lambda: ast.Continue())])


def _negated(node: ast.If | ast.While | ast.IfExp) -> ast.AST:
    new = copy.deepcopy(node)
    new.test = ast.UnaryOp(op=ast.Not(), operand=new.test)
    return new


def _is_log_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in _LOG_NAMES
    )


def _text(node: ast.AST) -> str:
    if isinstance(node, ast.stmt) and not isinstance(node, ast.Pass):
        # Statements: the first line is enough to recognise them and keeps the hash local.
        return ast.unparse(node).splitlines()[0]
    return ast.unparse(node)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def enumerate_mutants(source: str, filename: str = "<module>") -> list[Mutant]:
    """Every mutant of ``source``, in a fixed order."""
    walker = _Walker(target=None)
    walker.visit(ast.parse(source, filename))
    ids = [m.id for m in walker.found]
    if len(ids) != len(set(ids)):  # pragma: no cover - the occurrence counter prevents it
        raise RuntimeError(f"{filename}: duplicate mutant ids")
    return walker.found


def apply_mutant(source: str, index: int, filename: str = "<module>") -> ast.Module:
    """The module's AST with mutant number ``index`` applied (line numbers kept)."""
    walker = _Walker(target=index)
    tree = walker.visit(ast.parse(source, filename))
    assert isinstance(tree, ast.Module)
    return ast.fix_missing_locations(tree)
