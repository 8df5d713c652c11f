"""Backroom uses only the public APIs of quart, quart-schema, redis-py and Dramatiq, outside the isolated modules.

A private name (a leading underscore) of those libraries may change in any release. Each
package module is parsed and checked for: an import of a private name (or from a private
module), an attribute chain from an imported library name that reaches a private name, a
`getattr(<library name>, "_x")`, and, in a class built on a library class, a method or a
`self._x` / `cls._x` / `super()._x` access naming a private member of that library class.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("quart", "quart_schema", "redis", "dramatiq")
PACKAGES = (
    "actors",
    "admin",
    "broker",
    "cli",
    "config",
    "db",
    "domain",
    "edge",
    "fakes",
    "media",
    "ml",
    "providers",
    "schedules",
    "web",
)
# the one module per framework allowed to use its internals, behind a canary test and an exact pin
ISOLATED = {"broker/dramatiq_consumer.py"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library(dotted: str) -> bool:
    return dotted.split(".")[0] in LIBRARIES


def _chain(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None when it does not start from a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _resolve(dotted: str) -> object | None:
    """The library object named `dotted` (module, then attributes), or None when it cannot be found."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute, None)
        return found
    return None


def private_uses(source: str) -> list[str]:
    """Every private use of the libraries in `source`, as 'line: what'."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    imported: dict[str, str] = {}  # local name -> the library's dotted name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library(alias.name):
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append((node.lineno, f"import {alias.name}"))
                    local = alias.asname or alias.name.split(".")[0]
                    imported[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _library(node.module):
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if any(_private(part) for part in dotted.split(".")):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                imported[alias.asname or alias.name] = dotted
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _chain(node)  # `a._b.c` is reported once, at its private step `a._b`
            if chain and chain[0] in imported and _private(chain[-1]):
                found.append((node.lineno, ".".join([imported[chain[0]], *chain[1:]])))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            chain = _chain(node.args[0])
            if chain and chain[0] in imported:
                found.append((node.lineno, f"{node.func.id}({'.'.join(chain)}, {node.args[1].value!r})"))
        elif isinstance(node, ast.ClassDef):
            found += _subclass_uses(node, imported)
    return [f"{line}: {what}" for line, what in sorted(set(found))]


def _subclass_uses(cls: ast.ClassDef, imported: dict[str, str]) -> list[tuple[int, str]]:
    """Members of a library base class that `cls` overrides or reads while they are private."""
    bases = []
    for base in cls.bases:
        chain = _chain(base)
        if chain and chain[0] in imported:
            resolved = _resolve(".".join([imported[chain[0]], *chain[1:]]))
            if isinstance(resolved, type):
                bases.append(resolved)
    if not bases:
        return []
    names: list[tuple[int, str]] = []
    for node in ast.walk(cls):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node in cls.body:
            names.append((node.lineno, node.name))
        elif isinstance(node, ast.Attribute) and (
            (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            or (
                isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "super"
            )
        ):
            names.append((node.lineno, node.attr))
    return [
        (line, f"{cls.name}: {base.__module__}.{base.__qualname__}.{name}")
        for line, name in names
        if _private(name)
        for base in bases
        if any(name in vars(klass) for klass in base.__mro__)
    ]


def _modules() -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for path in (ROOT / package).rglob("*.py")
    )


def _checked(path: str) -> list[str]:
    return private_uses((ROOT / path).read_text())


@pytest.mark.parametrize("path", [p for p in _modules() if p not in ISOLATED])
def test_a_package_module_uses_only_public_library_names(path: str) -> None:
    assert _checked(path) == [], f"{path} uses private names of {', '.join(LIBRARIES)}"


def test_the_allow_lists_name_existing_modules_that_need_them() -> None:
    for path in sorted(ISOLATED):
        assert (ROOT / path).is_file(), f"{path} is gone: drop it from the allow-list"
        assert _checked(path), f"{path} uses no private name any more: drop it from the allow-list"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from dramatiq.brokers.redis import _RedisConsumer", ["1: from dramatiq.brokers.redis import _RedisConsumer"]),
        (
            "from quart.helpers import _split_blueprint_path as split",
            ["1: from quart.helpers import _split_blueprint_path"],
        ),
        ("import redis.connection\nredis.connection.x._parser", ["2: redis.connection.x._parser"]),
        ("import dramatiq\ndramatiq._private.thing", ["2: dramatiq._private"]),
        ("import quart\nquart.helpers._split_blueprint_path('a.b')", ["2: quart.helpers._split_blueprint_path"]),
        (
            "import redis.asyncio as aioredis\naioredis.connection._AsyncRESP2Parser",
            ["2: redis.asyncio.connection._AsyncRESP2Parser"],
        ),
        ("from quart_schema import conversion\ngetattr(conversion, '_hidden')", ["2: getattr(conversion, '_hidden')"]),
        (
            "from dramatiq.brokers.redis import RedisBroker\nclass B(RedisBroker):\n"
            "    def f(self):\n        return self._max_unpack_size()",
            ["4: B: dramatiq.brokers.redis.RedisBroker._max_unpack_size"],
        ),
        (
            "from quart.asgi import ASGIHTTPConnection\nclass C(ASGIHTTPConnection):\n"
            "    async def _send_response(self, send, response):\n        await super()._send_response(send, response)",
            [
                "3: C: quart.asgi.ASGIHTTPConnection._send_response",
                "4: C: quart.asgi.ASGIHTTPConnection._send_response",
            ],
        ),
        # public names, private names of our own, and other libraries' private names are fine
        (
            "import redis\nfrom dramatiq import Middleware\nclass M(Middleware):\n    def _mine(self):\n"
            "        return self._own\nredis.Redis.from_url\nfrom collections import namedtuple\n"
            "namedtuple('P', 'a')._make",
            [],
        ),
    ],
)
def test_private_uses_are_found(source: str, expected: list[str]) -> None:
    assert private_uses(source) == expected
