"""The package's structure: its import graph has no cycle and no private name crosses a module
boundary, and each loss and penalty is defined in exactly one place (the one-objective rule)."""

import ast
import pathlib

import pytest

import gan_notes

PKG = pathlib.Path(gan_notes.__file__).parent
MODULES = {p.stem: p for p in PKG.glob("*.py") if p.stem != "__init__"}


def _imports(path: pathlib.Path):
    """(imported gan_notes module, imported names, aliases bound to gan_notes modules) of a file,
    function-level imports included."""
    tree = ast.parse(path.read_text())
    deps, names, aliases = set(), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_notes"):
            mod = node.module.split(".")[1] if "." in node.module else None
            if mod:
                deps.add(mod)
                names += [(mod, a.name) for a in node.names]
            else:  # from gan_notes import x, y
                for a in node.names:
                    if a.name in MODULES:
                        deps.add(a.name)
                        aliases[a.asname or a.name] = a.name
                    else:
                        names.append(("gan_notes", a.name))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gan_notes."):
                    deps.add(a.name.split(".")[1])
    return deps, names, aliases, tree


def _graph():
    return {m: _imports(p)[0] - {m} for m, p in MODULES.items()}


def test_the_import_graph_has_no_cycle():
    graph, state, stack = _graph(), {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in graph.get(m, ()):
            if state.get(d) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m)


def test_a_cycle_is_detected():
    # The check above can fail: a made-up graph with a cycle trips the same walk.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    seen, found = set(), []

    def visit(m, path):
        for d in graph[m]:
            if d in path:
                found.append(d)
            elif d not in seen:
                seen.add(d)
                visit(d, path + [d])

    visit("a", ["a"])
    assert found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_module(module):
    deps, names, aliases, tree = _imports(MODULES[module])
    assert not [d for d in deps if d.startswith("_")], f"{module} imports a private module"
    private = [f"{m}.{n}" for m, n in names if n.startswith("_") and not n.startswith("__")]
    assert not private, f"{module} imports private names {private}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            assert not (node.attr.startswith("_") and not node.attr.startswith("__")), \
                f"{module} uses {node.value.id}.{node.attr}"


def test_no_module_re_exports_another_modules_names():
    # A facade lists in __all__ a name it imported from another gan_notes module.
    for module, path in MODULES.items():
        _, names, _, tree = _imports(path)
        imported = {n for _, n in names}
        exported = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                exported = {e.value for e in node.value.elts}
        assert not (exported & imported), f"{module} re-exports {sorted(exported & imported)}"


def _definitions(name):
    return [m for m, p in MODULES.items()
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name]


@pytest.mark.parametrize("name", [
    "discriminator_loss", "generator_loss", "dual_discriminator_loss", "dual_generator_loss",
    "d2gan_discriminator_loss", "d2gan_generator_loss", "began_losses", "gradient_penalty", "r1_penalty",
    "dragan_penalty", "mode_seeking_loss", "feature_matching_loss", "mixture_classifier_loss", "unroll",
    "discriminator_step_loss", "generator_step_loss", "Method",
])
def test_each_loss_penalty_and_remedy_is_defined_once(name):
    assert len(_definitions(name)) == 1, _definitions(name)


@pytest.mark.parametrize("constant", ["LOSSES", "PENALTIES", "METHODS", "DATASETS", "PROFILES", "LOGISTIC"])
def test_a_constant_name_means_one_thing(constant):
    owners = [m for m, p in MODULES.items() if any(
        isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == constant for t in n.targets)
        for n in ast.parse(p.read_text()).body)]
    assert len(owners) <= 1, f"{constant} is defined in {owners}"


def test_the_training_loops_compute_their_losses_through_the_objective():
    # Each loop calls the objective, and none calls a loss or penalty function itself.
    direct = {"discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty", "dragan_penalty",
              "dual_discriminator_loss", "dual_generator_loss", "unrolled_generator_loss"}
    for module in ("train", "image_training", "methods", "lab"):
        tree = ast.parse(MODULES[module].read_text())
        if module == "lab":  # the lab's arrows show grad_x L_G: a picture of the loss, not a step
            tree.body = [n for n in tree.body if not isinstance(n, ast.ClassDef)] + [
                ast.ClassDef(**{**vars(c), "body": [f for f in c.body if getattr(f, "name", "") != "generator_gradients"]})
                for c in tree.body if isinstance(c, ast.ClassDef)]
        calls = {n.func.id if isinstance(n.func, ast.Name) else n.func.attr
                 for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}
        assert {"discriminator_step_loss", "generator_step_loss"} <= calls, module
        assert not (calls & direct), f"{module} calls {sorted(calls & direct)} directly"


def test_every_module_has_a_section_in_the_api_reference():
    api = (PKG.parent / "book" / "api.md").read_text()
    missing = [m for m in MODULES if f".. automodule:: gan_notes.{m}\n" not in api]
    assert not missing, f"book/api.md lacks {missing}"
