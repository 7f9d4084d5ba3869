"""Load a scientist's recipe, a Python file that defines ``process_fov(fov, codebook)``.

The recipe is executed as its own module (not imported by name), so two recipes, or a
recipe named like a library, never shadow each other.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starfish_batch.core import storage
from starfish_batch.core.errors import RecipeError

ENTRY_POINT = "process_fov"


@dataclass
class Recipe:
    url: str
    source: bytes
    process_fov: Callable[..., Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source).hexdigest()


def compile_recipe(source: bytes, url: str) -> Recipe:
    """Execute the recipe's source as an isolated module and check its entry point."""
    name = f"starfish_batch_recipe_{hashlib.sha256(source).hexdigest()[:12]}"
    try:
        code = compile(source, url, "exec")
    except SyntaxError as exc:
        raise RecipeError(f"recipe {url} has a syntax error at line {exc.lineno}: {exc.msg}") from exc
    module = types.ModuleType(name)
    module.__file__ = url
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            raise RecipeError(not_installed(exc, url)) from exc
        raise RecipeError(
            f"recipe {url} failed while loading: {type(exc).__name__}: {exc}"
        ) from exc
    func = getattr(module, ENTRY_POINT, None)
    if func is None or not callable(func):
        raise RecipeError(f"recipe {url} does not define {ENTRY_POINT}(fov, codebook)")
    try:
        inspect.signature(func).bind(object(), object())
    except TypeError as exc:
        raise RecipeError(
            f"recipe {url}: {ENTRY_POINT} must accept (fov, codebook), its signature is "
            f"{ENTRY_POINT}{inspect.signature(func)}"
        ) from exc
    except ValueError:  # builtins without a signature: let the call decide
        pass
    return Recipe(url=url, source=source, process_fov=func)


def not_installed(exc: ModuleNotFoundError, url: str) -> str:
    """A recipe's import that fails names the interpreter (the usual cause: a bare ``python``
    instead of the project's), not only the recipe."""
    if (exc.name or "").split(".")[0] == "starfish":
        return (f"starfish is not installed for the Python running this ({sys.executable}), so recipe "
                f"{url} cannot load: run the launcher with the project's interpreter (.venv/bin/python "
                "after `make venv`), or through make (make run, make estimate)")
    return (f"recipe {url} failed while loading: ModuleNotFoundError: {exc} (not installed for the Python "
            f"running this: {sys.executable})")


def load_recipe(url: str, expected_sha256: str | None = None) -> Recipe:
    """Read and compile the recipe at ``url``; with ``expected_sha256``, refuse a changed file."""
    try:
        source = storage.read_bytes(url)
    except storage.StorageError as exc:
        raise RecipeError(f"recipe {url} cannot be read: {exc}") from exc
    if expected_sha256 is not None:
        actual = hashlib.sha256(source).hexdigest()
        if actual != expected_sha256:
            raise RecipeError(
                f"recipe {url} changed since the run started: sha256 {actual[:12]}... "
                f"is not the manifest's {expected_sha256[:12]}..."
            )
    return compile_recipe(source, url)
