"""The layers in the tree keep to their rules: who may import whom, and what %load_ext costs."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dbx_magic"

# layer -> the layers (top-level names under dbx_magic) it must never import
FORBIDDEN = {
    "api": {"run", "notebook", "sandbox"},
    "run": {"notebook", "sandbox"},
    "sandbox": {"api", "run", "notebook", "errors", "clock"},
    "errors": {"api", "run", "notebook", "sandbox"},
    "clock": {"api", "run", "notebook", "sandbox", "errors"},
    "safe": {"api", "run", "notebook", "sandbox", "errors", "clock"},
}
# outside packages only the notebook layer may import
NOTEBOOK_ONLY = {"IPython", "ipywidgets", "anywidget", "ipykernel"}


def layer_of(path: Path, root: Path = PACKAGE) -> str:
    return path.relative_to(root).with_suffix("").parts[0]


def violations(path: Path, root: Path = PACKAGE) -> set[str]:
    """The forbidden layers and packages ``path`` imports."""
    layer = layer_of(path, root)
    names = imports_of(path, root)
    inside = {name.split(".")[1] for name in names if name.startswith("dbx_magic.")}
    bad = inside & FORBIDDEN.get(layer, set())
    if layer != "notebook":
        bad |= {name.split(".")[0] for name in names} & NOTEBOOK_ONLY
    return bad


def imports_of(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ["dbx_magic", *path.relative_to(root).parent.parts]
    found: set[str] = set()
    for block in ast.walk(tree):  # annotations only: no import at run time
        if (
            isinstance(block, ast.If)
            and isinstance(block.test, ast.Name)
            and block.test.id == "TYPE_CHECKING"
        ):
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_keeps_to_its_layer(path: Path) -> None:
    assert violations(path) == set()


@pytest.mark.parametrize(
    ("where", "code", "found"),
    [
        ("run/bad.py", "from ..notebook.widgets import ProgressWidget", {"notebook"}),
        ("run/bad.py", "import ipywidgets", {"ipywidgets"}),
        ("api/bad.py", "from dbx_magic.run import watch", {"run"}),
        ("sandbox/bad.py", "from ..errors import InvalidInput", {"errors"}),
        ("notebook/ok.py", "import ipywidgets\nfrom ..run.watch import WatchedRun", set()),
    ],
)
def test_the_rules_see_a_violation(tmp_path: Path, where: str, code: str, found: set[str]) -> None:
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(code)
    assert violations(path, tmp_path) == found


# Immutable: the real clock (it has no state to change) and the faces' wording (frozen dataclasses).
SHARED_INSTANCES = {"SYSTEM", "PYTHON", "NOTEBOOK", "CLI"}


@functools.cache
def our_classes() -> frozenset[str]:
    """Every class defined at the top of a module of ours (parsed once, not once per module tested)."""
    return frozenset(
        n.name
        for module in MODULES
        for n in ast.parse(module.read_text()).body
        if isinstance(n, ast.ClassDef)
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_level_mutable_state(path: Path) -> None:
    """No module-level variable bound to a list, dict or set, and no module-level instance of a class
    of ours (a shared limiter, a current client): what is shared belongs to an object handed over.
    UPPER_CASE tables are constants by convention (never mutated)."""
    tree = ast.parse(path.read_text())
    ours = our_classes() | {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for name in (t.id for t in targets if isinstance(t, ast.Name)):
            constant = name.lstrip("_").isupper() or name == "__all__"
            value = node.value
            if isinstance(value, ast.List | ast.Dict | ast.Set):
                assert constant, f"{path.name}: module-level mutable {name}"
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ours:
                assert name in SHARED_INSTANCES, (
                    f"{path.name}: module-level instance {name} = {value.func.id}()"
                )


def test_load_ext_imports_no_http_stack() -> None:
    code = textwrap.dedent(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        InteractiveShell.instance().run_line_magic("load_ext", "dbx_magic")
        print([m for m in ("requests", "urllib3", "ipywidgets", "dbx_magic.api.client") if m in sys.modules])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
