"""Which images a recipe asks its FOV for, read from its source before the run starts.

A recipe that calls ``fov.get_image("dots")`` on an experiment whose images are
``anchor_dots``, ``anchor_nuclei`` and ``nuclei`` fails on every FOV with ``KeyError: 'dots'``;
the launcher reads the literal names the recipe asks for (``ast``, nothing executed beyond
what loading the recipe did) and says so before any worker starts. Names computed at run
time cannot be read here: the worker says then which images the experiment has
(:func:`missing_image_message`).
"""

from __future__ import annotations

import ast

from starfish_batch.core.errors import RecipeError

PRIMARY_CONSTANT = "PRIMARY_IMAGES"  # FieldOfView.PRIMARY_IMAGES == "primary"
PRIMARY = "primary"


def images_asked(source: bytes | str) -> list[tuple[str, int]]:
    """(image name, line) of every ``.get_image(<literal>)`` call in the recipe's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # load_recipe says so, with the line
    asked = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_image" and node.args):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            asked.append((arg.value, node.lineno))
        elif isinstance(arg, ast.Attribute) and arg.attr == PRIMARY_CONSTANT:
            asked.append((PRIMARY, node.lineno))
    return asked


def check_images(source: bytes | str, recipe: str, images: list[str], experiment: str) -> None:
    """Refuse, naming the experiment's images, a recipe that asks for an image it has not."""
    for name, line in images_asked(source):
        if name not in images:
            raise RecipeError(
                f"recipe {recipe} asks for image {name!r} (line {line}), but experiment {experiment} "
                f"has the images {', '.join(images)}: use one of these names in the recipe")


def missing_image_message(exc: BaseException, fov) -> str | None:
    """For a ``KeyError`` a recipe raised asking its FOV for an image it has not: the images it has."""
    if not isinstance(exc, KeyError) or not exc.args:
        return None
    try:
        images = sorted(str(t) for t in fov.image_types)
    except Exception:  # noqa: BLE001 - not a starfish FieldOfView: no better message
        return None
    asked = exc.args[0]
    if not isinstance(asked, str) or asked in images:
        return None
    return f"the recipe asked for image {asked!r}; the experiment's images are {', '.join(images)}"
