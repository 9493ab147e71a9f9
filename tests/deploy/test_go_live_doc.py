"""docs/go-live.md: its site-file example validates and its vpp command lines parse with the
real command line, so the guide cannot drift from the program unnoticed."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import PurePosixPath

import typer.main

from tests.deploy.tools import ROOT
from vpp.cli import app
from vpp.core.site import parse_site

DOC = ROOT / "docs" / "go-live.md"


def blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def vpp_command_lines() -> list[list[str]]:
    """Every ``vpp <command> ...`` in the shell blocks, continuations joined, redirections and
    comments cut, ``$(date ...)`` put in as a date."""
    group = typer.main.get_command(app)
    names = set(group.list_commands(group.make_context("vpp", ["--help"], resilient_parsing=True)))  # type: ignore[attr-defined]
    found = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\$\(date[^)]*\)", "2026-03-29", line.split(" #")[0])
            if not re.search(rf"(^|[\s/])vpp ({'|'.join(map(re.escape, names))})\b", line):
                continue  # not a vpp command (curl bodies span lines: leave them alone)
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words[:-1]):
                if PurePosixPath(word).name == "vpp" and words[i + 1] in names:
                    args = words[i + 1 :]
                    found.append(args[: args.index(">")] if ">" in args else args)
                    break
    return found


def test_the_site_file_example_is_valid() -> None:
    example, *parts = blocks("toml")
    data = tomllib.loads(example)
    site = parse_site(data, "go-live.md")
    assert [d.kind.value for d in site.devices] == ["meter", "pv", "battery"]
    assert site.grid.meter == "grid-meter" and site.run.simulate is False
    # Later blocks are parts of a site file (a table each): valid in the example.
    for part in parts:
        for table, values in tomllib.loads(part).items():
            data.setdefault(table, {}).update(values)
        parse_site(data, "go-live.md")
    assert parts, "the backup settings of section 11"


def test_every_vpp_command_line_parses() -> None:
    group = typer.main.get_command(app)
    lines = vpp_command_lines()
    used = {args[0] for args in lines}
    assert {"scan", "check-config", "run", "backup"} <= used, used
    for name, *rest in lines:
        command = group.get_command(group.make_context("vpp", [name]), name)  # type: ignore[attr-defined]
        command.make_context(name, list(rest))  # raises on an unknown option or a bad value
