"""Every third-party module the code imports comes from a distribution pyproject.toml declares.

A package that arrives only as another's dependency works until that one drops it or
bounds it differently: `starlette` came with FastAPI, `graphql` with Strawberry,
`cryptography` with PyJWT's extra, and nothing said the gateway imports them itself.
Namespace packages are owned file by file (`opentelemetry.sdk` is not
`opentelemetry-api`), so a module is traced to the distribution whose files hold it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import metadata
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
OURS = frozenset({"gateway", "schema", "tests", "build_hooks"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SUFFIXES = (".py", ".pyi", ".so", ".pyd")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str) -> tuple[str, list[str]]:
    """A requirement's distribution and the extras it asks for: `propgate[tracing]`."""
    name = _NAME.match(line)
    assert name is not None, line
    extras = re.match(r"\[([^\]]*)\]", line[name.end() :].lstrip())
    wanted = [extra.strip() for extra in extras.group(1).split(",")] if extras else []
    return _normal(name.group()), wanted


def _declared(*extras: str) -> frozenset[str]:
    """The distributions the project depends on, with those of `extras` and of the extras
    they name in turn (`test` asks for `propgate[tracing]`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional: dict[str, list[str]] = project["optional-dependencies"]
    own = _normal(project["name"])
    names: set[str] = set()
    pending = [*project["dependencies"], *(line for extra in extras for line in optional[extra])]
    while pending:
        name, wanted = _requirement(pending.pop())
        if name == own:
            pending.extend(line for extra in wanted for line in optional[extra])
        else:
            names.add(name)
    return frozenset(names)


def _module_of(file: PurePosixPath) -> str | None:
    if file.suffix not in _SUFFIXES or ".." in file.parts:
        return None
    stem = file.name.split(".")[0]
    parts = [*file.parent.parts, stem] if stem != "__init__" else list(file.parent.parts)
    return ".".join(parts) if parts and all(part.isidentifier() for part in parts) else None


@cache
def _owners() -> dict[str, frozenset[str]]:
    """Every installed module and package, with the distributions whose files hold it."""
    owners: defaultdict[str, set[str]] = defaultdict(set)
    for distribution in metadata.distributions():
        name = _normal(distribution.metadata["Name"])
        for file in distribution.files or []:
            module = _module_of(PurePosixPath(str(file)))
            while module:
                owners[module].add(name)
                module = module.rpartition(".")[0]
    return {module: frozenset(names) for module, names in owners.items()}


def _imported(tree: ast.AST) -> Iterator[str]:
    """The modules a file imports; `from a import b` names `a.b` when that is a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in _owners() else node.module


def _undeclared(folders: Iterable[str], declared: frozenset[str]) -> dict[str, str]:
    """Each undeclared distribution (or a module none holds), with a first place importing it."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imported(ast.parse(path.read_text(), str(path))):
                top = module.partition(".")[0]
                if top in OURS or top in sys.stdlib_module_names:
                    continue
                owners = _owners().get(module, frozenset())
                if not owners & declared:
                    where = f"{path.relative_to(ROOT)} imports {module}"
                    found.setdefault(" or ".join(sorted(owners)) or f"? ({module})", where)
    return found


def test_the_gateway_imports_only_what_it_declares() -> None:
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    features = [extra for extra in optional if extra != "test"]
    assert _undeclared(["gateway", "schema"], _declared(*features)) == {}


def test_the_tests_import_only_what_the_test_extra_declares() -> None:
    assert _undeclared(["tests"], _declared("test")) == {}


def test_an_import_that_only_arrives_with_another_package_is_found() -> None:
    """What the check relies on: FastAPI brings Starlette, but only Starlette owns it."""
    assert _owners()["starlette.requests"] == {"starlette"}
    assert "opentelemetry-sdk" in _owners()["opentelemetry.sdk.trace"]
    assert "opentelemetry-api" not in _owners()["opentelemetry.sdk.trace"]
    without = _declared() - {"starlette"}
    assert "starlette" in _undeclared(["gateway"], without)
