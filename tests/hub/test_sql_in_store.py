"""SQL lives in ``hub/store`` (docs/hub.md, "Storage"): the rest of the hub calls repository
functions. Read from the source: no statement run on a transaction, and no SQL in a string, outside
``hub/store`` (the ingest pipeline's savepoints excepted)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HUB = Path(__file__).resolve().parents[2] / "hub"
STORE = HUB / "store"
# Methods that run a statement on a transaction or connection.
DB_CALLS = frozenset(
    {"execute", "executemany", "executescript", "fetchone", "fetchall", "fetchmany", "fetchval"}
)
# The ingest pipeline isolates each message in a savepoint of the batch's transaction.
ALLOWED_STATEMENTS = {
    "ingest/pipeline.py": frozenset({"SAVEPOINT msg", "ROLLBACK TO msg", "RELEASE msg"}),
}
# Modules allowed to forward statements they are given (no SQL of their own: the literal check
# still applies): the ingest ledger's counting proxy around a transaction.
FORWARDERS = frozenset({"ingest/ledger.py"})
# Uppercase SQL, as the repositories write it: a statement's head and the word that must follow.
SQL = re.compile(
    r"\b(SELECT\b[^\"']*?\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|(CREATE|ALTER|DROP)\s+(UNIQUE\s+)?(TABLE|INDEX|VIEW|TRIGGER)|ON\s+CONFLICT)\b"
)


def _text(node: ast.expr) -> str | None:
    """A string literal's text (an f-string's fixed parts, holes as ``?``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) or "?" for v in node.values)
    return None


def offences(source: str, rel: str) -> list[str]:
    """Where ``source`` (the module ``hub/<rel>``) runs or spells SQL outside the store."""
    found = []
    tree = ast.parse(source, rel)
    nested: set[int] = set()  # an f-string's parts are checked as the whole f-string
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            nested.update(id(v) for v in node.values)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in DB_CALLS
            and rel not in FORWARDERS
        ):
            sql = _text(node.args[0]) if node.args else None
            if sql not in ALLOWED_STATEMENTS.get(rel, ()):
                found.append(f"hub/{rel}:{node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, (ast.Constant, ast.JoinedStr)) and id(node) not in nested:
            text = _text(node)
            if text is not None and SQL.search(text):
                found.append(f"hub/{rel}:{node.lineno}: SQL {text[:60]!r}")
    return found


def test_sql_lives_in_the_store() -> None:
    found = []
    for path in sorted(HUB.rglob("*.py")):
        if STORE in path.parents:
            continue
        rel = path.relative_to(HUB).as_posix()
        found += offences(path.read_text(), rel)
    assert not found, "move these statements into hub/store/repo/:\n" + "\n".join(found)


def test_the_check_sees_sql() -> None:
    """The check itself: each way SQL slips out of the store is caught, the exceptions are not."""
    caught = [
        'await tx.fetchone("SELECT 1 FROM sites WHERE id = ?", (s,))',
        "await self._tx.execute(sql)",
        'SQL = "UPDATE devices SET online = 0"',
        'q = f"DELETE FROM {table} WHERE id = ?"',
        'q = ("INSERT INTO t (a) VALUES (?) "\n     "ON CONFLICT (a) DO NOTHING")',
        "await conn.executemany(STATEMENT, rows)",
        'DDL = """\nCREATE TABLE t (id TEXT)\n"""',
    ]
    for snippet in caught:
        assert offences(snippet, "x/y.py"), snippet
    assert offences('await tx.execute("SAVEPOINT msg")', "x/y.py")
    fine = [
        ('await tx.execute("SAVEPOINT msg")', "ingest/pipeline.py"),
        ("await self._tx.execute(sql, params)", "ingest/ledger.py"),
        ('"""Select the parcels from the store; update the sites."""', "x/y.py"),
        ("await devices_repo.site_exists(tx, site)", "x/y.py"),
    ]
    for snippet, rel in fine:
        assert not offences(snippet, rel), snippet
