"""The shape of the package, checked from its source (docs/ARCHITECTURE.md): no import cycle
(imports inside functions counted too), no module using another module's private names, every
framework imported only inside its own folder, the main-process modules free of frameworks, and
tox.ini's generated environments current."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conformance import frameworks, kinds
from conformance.frameworks import toxini

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conformance"


def _modules() -> dict:
    """module name -> (path, is package) for every .py file of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _imports(name: str):
    """(line, imported module, imported names) of every import statement in a module, anywhere in
    it; relative imports resolved."""
    path, is_pkg = MODULES[name]
    package = name if is_pkg else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield node.lineno, module, [a.name for a in node.names]


def _graph() -> dict:
    """Edges between the package's own modules (``from . import x`` of a submodule is an edge to
    it; a name taken from a module is an edge to that module)."""
    edges = {m: set() for m in MODULES}
    for m in MODULES:
        for _, module, names in _imports(m):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
            if subs:
                edges[m].update(subs)
            if module in MODULES and len(subs) < len(names or [None]):
                edges[m].add(module)
        edges[m].discard(m)
    return edges


def _cycles(edges: dict) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_counting_imports_inside_functions():
    assert _cycles(_graph()) == []


def test_no_module_takes_another_modules_private_names():
    bad = []
    for m in MODULES:
        path = MODULES[m][0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for lineno, module, names in _imports(m):
            if not module.startswith("conformance"):
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: from {module} import {n}")
        for node in ast.walk(tree):  # `from conformance import x` / `import ... as x`, then x._y
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("conformance") or (
                    isinstance(node, ast.ImportFrom) and node.level):
                aliases.update({a.asname or a.name: a.name for a in node.names})
            elif isinstance(node, ast.Import):
                aliases.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("conformance")})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and f"{node.value.id}" not in ("self", "cls")):
                target = aliases[node.value.id]
                if any(k.endswith("." + target) or k == target for k in MODULES):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert bad == []


def test_each_framework_is_imported_only_in_its_own_folder():
    found = frameworks.discover()
    packages = {fw.package: name for name, fw in found.items()}
    bad = []
    for m, (path, _) in MODULES.items():
        for lineno, module, _ in _imports(m):
            top = module.split(".")[0]
            if top in packages and not m.startswith(f"conformance.frameworks.{packages[top]}."):
                bad.append(f"{path.relative_to(ROOT)}:{lineno}: imports {module}")
    assert bad == []


def test_the_main_process_imports_no_framework():
    """Everything the CLI and the pytest plugin load, the registry and every kind's cell and
    snippet writer included, imports no framework."""
    packages = sorted({fw.package for fw in frameworks.discover().values()})
    code = ("import sys\n"
            "import conformance.cli, conformance.pytest_plugin, conformance.runner, conformance.registry\n"
            "from conformance import frameworks, kinds\n"
            "conformance.registry.load(); kinds.kinds()\n"
            "[frameworks.part(n, 'snippets') for n in frameworks.discover()]\n"
            f"print(sorted(p for p in {packages!r} if p in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_every_kind_folder_has_its_three_parts():
    assert set(kinds.names()) >= {"clipping", "derivation", "training"}
    for name in kinds.names():
        assert kinds.blocks()[name] is not None
        assert kinds.kinds()[name].name == name
        assert kinds.kinds()[name].oracle is kinds.oracles()[name]


def test_tox_ini_is_current():
    """tox.ini's framework environments are generated from the framework folders; regenerate
    with `python -m conformance.frameworks tox-ini`."""
    text = (ROOT / "tox.ini").read_text(encoding="utf-8")
    assert toxini.render(text) == text
