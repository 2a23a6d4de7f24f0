"""The architecture the folders show, held by a test: the maths (``backends/``) imports nothing of the package
above it, the command line is imported by nobody in the library, and no module depends on itself through
others. Every import statement counts, those inside functions included."""
import ast
import pathlib

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
# Where each folder of the repository is installed (setup.py's package_dir).
INSTALLED_AS = {"minivgg": "minivgg", "backends": "minivgg.backends", "data": "minivgg.resources"}


def _module_name(path):
    parts = list(path.relative_to(REPOSITORY).with_suffix("").parts)
    parts = INSTALLED_AS[parts[0]].split(".") + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    """``{module name: source file}`` of every module of the installed package."""
    files = [path for folder in ("minivgg", "backends") for path in (REPOSITORY / folder).rglob("*.py")]
    return {_module_name(path): path for path in files}


def _imports(name, is_package, source, modules):
    """The modules of the package that module ``name`` (whose text is ``source``) imports anywhere, inside
    functions too. ``from package import module`` counts as importing that module (not the package), the way
    Python resolves it."""
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            submodules = {f"{source}.{alias.name}" for alias in node.names} & set(modules)
            found.update(submodules or {source})
    return {module for module in found if module in modules and module != name}


def import_graph():
    modules = _modules()
    return {name: _imports(name, path.name == "__init__.py", path.read_text(encoding="utf-8"), modules)
            for name, path in modules.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_maths_imports_nothing_of_the_package_above_it():
    graph = import_graph()
    crossing = {name: sorted(module for module in imported if not module.startswith("minivgg.backends"))
                for name, imported in graph.items() if name.startswith("minivgg.backends")}
    assert {name: modules for name, modules in crossing.items() if modules} == {}


def test_no_module_depends_on_itself_through_others():
    assert cycles(import_graph()) == []


def test_the_library_never_imports_the_command_line():
    graph = import_graph()
    library = {name: sorted(module for module in imported if module.startswith("minivgg.cli"))
               for name, imported in graph.items() if not name.startswith("minivgg.cli") and name != "minivgg.__main__"}
    assert {name: modules for name, modules in library.items() if modules} == {}


def test_the_walk_sees_imports_inside_functions_and_cycles_through_them():
    """The checks above can fail: an import inside a function is found, relative or absolute, a module imported
    by name from its package counts as that module, and a loop through such imports is a cycle."""
    modules = {"minivgg.a": None, "minivgg.b": None, "minivgg.backends.c": None}
    inside_a_function = "import os\n\ndef f():\n    from .b import g\n    return g\n"
    assert _imports("minivgg.a", False, inside_a_function, modules) == {"minivgg.b"}
    assert _imports("minivgg.backends.c", False, "def f():\n    from .. import b\n", modules) == {"minivgg.b"}
    assert _imports("minivgg.b", False, "import minivgg.a\n", modules) == {"minivgg.a"}
    assert cycles({"minivgg.a": {"minivgg.b"}, "minivgg.b": {"minivgg.a"}}) == [["minivgg.a", "minivgg.b"]]
    assert cycles({"minivgg.a": {"minivgg.b"}, "minivgg.b": set()}) == []
