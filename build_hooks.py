"""The setuptools build step that puts GraphiQL's browser files into the package.

It runs inside `build_py`, which `pip install .`, `pip install -e .` and the Docker
build all go through, so the README's set-up commands need no extra step. It fetches
before the package data is collected, into the source tree's git-ignored
`gateway/edge/graphiql/static/` (an editable install serves it from there; a wheel copies it).

Without the npm registry the install still succeeds: the build says so, and the
GraphiQL page then tells the user to run `gateway graphiql-assets`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

from setuptools.command.build_py import build_py

__all__ = ["BuildWithGraphiQL"]

logger = logging.getLogger(__name__)


def _assets_module() -> ModuleType:
    """`gateway/edge/graphiql/assets.py` by its path: importing the `gateway` package here would
    need its dependencies, which are not installed while the project is being built."""
    path = Path(__file__).parent / "gateway" / "edge" / "graphiql" / "assets.py"
    spec = importlib.util.spec_from_file_location("propgate_graphiql_assets", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class BuildWithGraphiQL(build_py):
    def run(self) -> None:
        assets = _assets_module()
        try:
            if assets.fetch():
                logger.warning("GraphiQL assets fetched into %s", assets.DIRECTORY)
        except assets.AssetsUnavailable as error:
            logger.warning(
                "GraphiQL assets not fetched (%s); the page will say how to fetch them", error
            )
        super().run()
