"""The runtime wheel holds the runtime packages only: no local fakes, no bench scripts, no tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what a checkout holds beside the sources: a build copies none of it
LOCAL = shutil.ignore_patterns(".venv", ".git", "var", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".bench")
ONLY_IN_A_CHECKOUT = {"fakes", "bench", "tests"}
# what `backroom dev` runs, without the current directory on sys.path (as a console script has it)
START_MARKETPLACE = """
from cli.devstack import start_marketplace
market = start_marketplace({"DEV_MARKETPLACE_PORT": "0"})
print("marketplace:", "started" if market else "none")
if market:
    market.stop()
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(*args: str, **options: object) -> subprocess.CompletedProcess[str]:
    """`args` run to the end, output captured; fails the test on a non-zero exit."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **options)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime wheel built from a copy of this checkout (a build writes build/ and *.egg-info into its source)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, tmp / "src", ignore=LOCAL)
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        str(tmp / "src"),
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(tmp / "dist"),
    )
    (built,) = (tmp / "dist").glob("backroom-*.whl")
    return built


def test_the_wheel_ships_no_fakes_bench_or_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {"cli", "schedules", "web", "providers"} <= top  # the runtime is there (the listing is read right)
    assert "cli/devstack.py" in names and any(n.startswith("migrations/") and n.endswith(".sql") for n in names)
    assert {"admin/service.py", "web/admin/templates/admin/base.html", "web/admin/static/admin.css"} <= set(names)
    assert not top & ONLY_IN_A_CHECKOUT, sorted(n for n in names if n.split("/")[0] in ONLY_IN_A_CHECKOUT)


def test_backroom_dev_from_the_wheel_says_how_to_get_the_marketplace(wheel: Path, tmp_path: Path) -> None:
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"), str(wheel))
    # -P: no current directory on sys.path; the wheel's cli/ comes before the checkout's editable one
    done = run(
        sys.executable,
        "-P",
        "-c",
        START_MARKETPLACE,
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": str(tmp_path / "site")},
    )
    assert "marketplace: none" in done.stdout
    assert "run `make run` from a clone of the repository" in done.stdout


def test_backroom_dev_from_a_checkout_starts_the_marketplace(tmp_path: Path) -> None:
    done = run(sys.executable, "-P", "-c", START_MARKETPLACE, cwd=tmp_path, env=_env())
    assert "marketplace: started" in done.stdout, done.stdout
