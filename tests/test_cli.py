"""The root command line: every subcommand listed, each loaded alone, bad arguments refused."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from lockerhub.cli import COMMANDS, build_parser, main


def test_table_matches_what_components_register() -> None:
    registered: dict[str, str] = {}
    for module in {m for m, _ in COMMANDS.values()}:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        for name in sub.choices:
            registered[name] = module
    assert registered == {name: module for name, (module, _) in COMMANDS.items()}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "usage: lockerhub" in capsys.readouterr().out


def test_edge_loads_neither_grpc_nor_solvers() -> None:
    # A cabinet board runs `lockerhub edge`: no room for gRPC, numba or OR-Tools in its memory.
    probe = (
        "import sys\n"
        "from lockerhub.cli import main\n"
        "try:\n    main(['edge', '--help'])\nexcept SystemExit:\n    pass\n"
        "mods = ('grpc', 'numba', 'ortools', 'prometheus_client')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout


@pytest.mark.parametrize(
    "argv",
    [[], ["bogus"], ["--log-level", "LOUD", "hub"], ["edge", "--config"], ["hub", "--nope"]],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_listing_imports_no_component() -> None:
    parser = build_parser()
    assert set(parser._subparsers._group_actions[0].choices) == set(COMMANDS)  # type: ignore[union-attr]
