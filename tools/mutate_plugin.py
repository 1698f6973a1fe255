"""Pytest plugin of ``tools/mutate.py``: imports one module with one mutant applied.

Loaded with ``-p tools.mutate_plugin`` before conftest files, so the mutated module is the one
every test imports. The mutant comes from the environment (set by the runner); the module's file on
disk is never touched, so a run leaves the work tree as it was and runs may go in parallel.
Hypothesis is made deterministic (derandomized, no example database) so a mutant is caught or not,
every time.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import CodeType, ModuleType

from tools.mutation import apply_mutant, enumerate_mutants

ENV_MODULE = "LOCKERHUB_MUTANT_MODULE"
ENV_SOURCE = "LOCKERHUB_MUTANT_SOURCE"
ENV_INDEX = "LOCKERHUB_MUTANT_INDEX"
ENV_ID = "LOCKERHUB_MUTANT_ID"
#: Exit status of a run whose mutant could not be set up (the runner reports it as an error).
SETUP_FAILED = 97


class _MutantLoader(importlib.abc.Loader):
    def __init__(self, code: CodeType) -> None:
        self._code = code

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self._code, module.__dict__)  # noqa: S102 - the point of a mutation run


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, path: Path, code: CodeType) -> None:
        self._module = module
        self._path = path
        self._code = code

    def find_spec(
        self,
        fullname: str,
        path: object = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._module:
            return None
        package = self._path.name == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname,
            self._path,
            loader=_MutantLoader(self._code),
            submodule_search_locations=[str(self._path.parent)] if package else None,
        )


def _fail(message: str) -> None:
    print(f"mutate_plugin: {message}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def _install() -> None:
    module = os.environ.get(ENV_MODULE)
    if not module:
        return
    path = Path(os.environ[ENV_SOURCE]).resolve()
    index = int(os.environ[ENV_INDEX])
    source = path.read_text(encoding="utf-8")
    mutants = enumerate_mutants(source, str(path))
    if index >= len(mutants) or mutants[index].id != os.environ.get(ENV_ID):
        _fail(f"{module}: mutant #{index} is not {os.environ.get(ENV_ID)} (source changed?)")
    if module in sys.modules:
        _fail(f"{module} was imported before the plugin could mutate it")
    code = compile(apply_mutant(source, index, str(path)), str(path), "exec", dont_inherit=True)
    sys.meta_path.insert(0, _MutantFinder(module, path, code))


def _deterministic_hypothesis() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # pragma: no cover - hypothesis is in the dev extra
        return
    settings.register_profile(
        "mutation",
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    settings.load_profile("mutation")


_deterministic_hypothesis()
_install()
