"""The README's "Code layout" section names every package directory, and names nothing that is not there."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# what a checkout holds beside the sources
SKIPPED = {".venv", ".git", "build", "var", "node_modules", "tests"}


def layout_section() -> str:
    """The text of the README's "## Code layout" section."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Code layout\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, 'the README has no "## Code layout" section'
    return match.group(1)


def named_paths() -> list[str]:
    """The directories the section's listing names, one a line (`web/admin/`)."""
    block = re.search(r"^```\n(.*?)^```", layout_section(), re.S | re.M)
    assert block, "the Code layout section has no listing"
    return [line.split()[0].rstrip("/") for line in block.group(1).splitlines() if line.strip()]


def package_dirs() -> set[str]:
    """Every directory of the checkout holding an `__init__.py` (tests/ is named once, as a whole)."""
    found = set()
    for here, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED and not d.startswith((".", "__"))]
        if "__init__.py" in files and Path(here) != ROOT:
            found.add(Path(here).relative_to(ROOT).as_posix())
    return found


def test_every_package_is_named_in_the_code_layout() -> None:
    packages = package_dirs()
    assert {"admin", "broker", "web", "web/admin"} <= packages  # the tree is read right
    assert not packages - set(named_paths()), sorted(packages - set(named_paths()))


def test_every_named_directory_exists() -> None:
    named = named_paths()
    assert len(named) == len(set(named)), "a directory is named twice"
    assert [path for path in named if not (ROOT / path).is_dir()] == []


def test_every_runtime_package_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = {name.replace(".", "/") for name in config["tool"]["setuptools"]["packages"]}
    checkout_only = {path for path in package_dirs() if path.split("/")[0] in {"fakes", "bench"}}
    assert package_dirs() - checkout_only - shipped == set()


def test_no_bench_module_shadows_a_package() -> None:
    # benches run their children with bench/ on the path (PYTHONPATH, dramatiq --path): a bench
    # script named like a package (bench/admin.py once) made `backroom` fail to import admin/
    packages = {path for path in package_dirs() if "/" not in path}
    assert {"admin", "actors"} <= packages
    bench = {p.stem for p in (ROOT / "bench").glob("*.py")}
    assert bench & packages == set()
