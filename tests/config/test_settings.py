"""Settings stop a process with one line naming the bad variable."""

from __future__ import annotations

import subprocess
import sys


def run_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from config.settings import get_settings; get_settings(); print('ok')"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=".", timeout=60)


def test_missing_variable_is_named(tmp_path) -> None:
    result = run_with({"PATH": "/usr/bin", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2
    assert result.stderr.strip() == "backroom: missing setting DATABASE_URL (see .env.example)"


def test_malformed_variable_is_named() -> None:
    result = run_with({"PATH": "/usr/bin", "REDIS_URL": "http://nope", "DATABASE_URL": "postgresql://x/y"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("backroom: invalid setting REDIS_URL:")
    bad_int = run_with(
        {"PATH": "/usr/bin", "REDIS_URL": "redis://h/0", "DATABASE_URL": "postgresql://x/y", "API_PORT": "eighty"}
    )
    assert bad_int.stderr.strip().startswith("backroom: invalid setting API_PORT:")


def test_good_settings_load() -> None:
    result = run_with({"PATH": "/usr/bin", "REDIS_URL": "redis://h/0", "DATABASE_URL": "postgresql://x/y"})
    assert result.returncode == 0 and result.stdout.strip() == "ok"
