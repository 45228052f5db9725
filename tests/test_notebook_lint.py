"""Notebook lint: what a researcher changes is a parameter, and nothing hides results.

Three rules, checked on every notebook in ``notebooks/`` (the checker itself is
tested first on small bad and good cells, so each rule is known to fail when broken):

* no notebook slices the outcome list (``roles.outcomes[:4]`` silently dropped every
  outcome after the fourth from the synthesis' forest plots);
* no literal that has a parameter is written again outside the parameters cell (the
  projection horizon, lags, the 80% power target and the quality cut-offs were each
  repeated as bare numbers, so changing the parameter changed only part of a report);
  items of a longer literal (a grid, a list of choices, a mapping such as section
  numbers) and range or colour-scale bounds (``hi=``, ``vmin=``) are not repetitions;
* no global warnings filter (``warnings.simplefilter("ignore")`` silenced every warning
  for the rest of the session, including in cells a researcher adds): a filter must
  name a category, a message or a module, or sit inside ``warnings.catch_warnings()``.
"""

from __future__ import annotations

import ast
import json

import pytest

from exresearch import config

NB_DIR = config.NOTEBOOKS_DIR
NOTEBOOKS = sorted(p.stem for p in NB_DIR.glob("*.ipynb"))
#: Literals too common to attribute to one parameter.
TRIVIAL = {None, 0, 1, -1, "", 2}  # True, False, 0.0 and 1.0 compare equal to these
#: Keyword arguments that state an allowed range (``check_number(..., lo=0.001, hi=0.2)``)
#: or a colour scale (``vmin=0.5``), not an analysis choice: such a bound equal to a
#: default is not a repetition of it.
BOUNDS = {"lo", "hi", "low", "high", "lower", "upper", "min", "max", "minimum", "maximum",
          "vmin", "vmax"}


def _cells(nb: dict):
    """(index, is_parameters, parsed code) for each code cell that parses as Python."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        out.append((i, "parameters" in cell.get("metadata", {}).get("tags", []),
                    ast.parse("\n".join(lines))))
    return out


def _literal(node):
    """The value of a constant, or of a tuple/list of constants; else a sentinel."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and not all(isinstance(v, int | float | str) for v in value):
        return _NO
    if not isinstance(value, int | float | str | tuple):
        return _NO
    return value


_NO = object()


def _key(value):
    # 6 and 6.0 are the same horizon; True is not 1
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", float(value))
    if isinstance(value, tuple):
        return ("seq", tuple(_key(v) for v in value))
    return ("str", value)


def parameter_literals(nb: dict) -> dict:
    """Literal defaults of the parameters cell: key -> parameter name."""
    found = {}
    for _, is_params, tree in _cells(nb):
        if not is_params:
            continue
        for node in tree.body:
            target = value = None
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                target, value = node.target.id, node.value
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name)):
                target, value = node.targets[0].id, node.value
            if target is None or value is None:
                continue
            lit = _literal(value)
            if lit is _NO or lit in TRIVIAL or lit == ():
                continue
            found.setdefault(_key(lit), target)
    return found


def lint_notebook(nb: dict) -> list[str]:
    """Every problem of one notebook, as ``cell N: ...`` sentences."""
    problems = []
    params = parameter_literals(nb)
    for i, is_params, tree in _cells(nb):
        scoped = set()  # filters inside `with warnings.catch_warnings():` are local
        exempt = set()  # items of a longer literal (a grid, choices, a table), bounds
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List) and _literal(node) is not _NO:
                exempt.update(id(n) for n in node.elts)
            if isinstance(node, ast.Dict):
                exempt.update(id(n) for n in [*node.keys, *node.values] if n is not None)
            if isinstance(node, ast.keyword) and node.arg in BOUNDS:
                exempt.add(id(node.value))
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and any(
                    "catch_warnings" in ast.unparse(item.context_expr) for item in node.items):
                scoped.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)
                    and "outcome" in ast.unparse(node.value)):
                problems.append(f"cell {i}: slices the outcome list: {ast.unparse(node)} "
                                "(show every outcome, or make the choice a parameter)")
            if isinstance(node, ast.Call) and id(node) not in scoped:
                problem = _global_filter(node)
                if problem:
                    problems.append(f"cell {i}: {problem}")
            if is_params:
                continue
            if isinstance(node, ast.Constant | ast.Tuple | ast.List) and id(node) not in exempt:
                lit = _literal(node)
                if lit is not _NO and lit not in TRIVIAL and _key(lit) in params:
                    problems.append(
                        f"cell {i}: the literal {ast.unparse(node)} repeats the default of "
                        f"parameter {params[_key(lit)]!r}; use the parameter")
    return sorted(set(problems), key=problems.index)


def _global_filter(call: ast.Call) -> str | None:
    name = ast.unparse(call.func)
    if name.endswith(("simplefilter", "filterwarnings")):
        action = _literal(call.args[0]) if call.args else next(
            (_literal(k.value) for k in call.keywords if k.arg == "action"), None)
        if action == "ignore":
            targeted = {"category", "message", "module"} & {k.arg for k in call.keywords}
            # filterwarnings(action, message, category, module); simplefilter(action, category)
            if not targeted and len(call.args) <= 1:
                return f"global warnings filter {ast.unparse(call)} (name a category or message)"
    if name.endswith("seterr") and any(k.arg == "all" and _literal(k.value) == "ignore"
                                       for k in call.keywords):
        return f"global numpy error filter {ast.unparse(call)}"
    return None


# --------------------------------------------------------------------------- the checker
def _nb(params: str, *cells: str) -> dict:
    cs = [{"cell_type": "code", "source": params, "metadata": {"tags": ["parameters"]}}]
    cs += [{"cell_type": "code", "source": c, "metadata": {}} for c in cells]
    cs.append({"cell_type": "markdown", "source": "horizon 6 outcomes[:4]", "metadata": {}})
    return {"cells": cs}


@pytest.mark.parametrize("cell, expected", [
    ("ys = roles.outcomes[:4]", "cell 1: slices the outcome list: roles.outcomes[:4]"),
    ("ys = list(outcomes)[1:]", "cell 1: slices the outcome list: list(outcomes)[1:]"),
    ("p = project(x, periods=6)",
     "cell 1: the literal 6 repeats the default of parameter 'horizon'; use the parameter"),
    ("fit(lags=(0, 1))",
     "cell 1: the literal (0, 1) repeats the default of parameter 'lags'; use the parameter"),
    ("ok = power >= 0.80",
     "cell 1: the literal 0.8 repeats the default of parameter 'power_target'"),
    ("import warnings\nwarnings.simplefilter('ignore')",
     "cell 1: global warnings filter warnings.simplefilter('ignore') (name a category"),
    ("warnings.filterwarnings(action='ignore')", "cell 1: global warnings filter"),
    ("np.seterr(all='ignore')", "cell 1: global numpy error filter"),
])
def test_lint_finds(cell, expected):
    nb = _nb('horizon: int = 6  # months\nlags = (0, 1)\npower_target: float = 0.8\n'
             'name: str = "x"\nflag = True', cell)
    problems = lint_notebook(nb)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("cell", [
    "ys = roles.outcomes\nfirst = ys[0]",
    "p = project(x, periods=horizon)\nfit(lags=lags)",
    "ok = power >= power_target\nn = len(x) + 1",
    "warnings.simplefilter('ignore', category=RuntimeWarning)",
    "warnings.filterwarnings('ignore', message='Mean of empty slice')",
    "warnings.filterwarnings('ignore', 'Mean of empty slice')",
    "with warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n    f()",
    "%matplotlib inline\nx = 7",
    "grid = power_grid(r=[0.05, 0.2, 0.8], n=[6, 12])",
    "power_target = check_number('power_target', power_target, lo=0.5, hi=0.8)",
    "method = check_choice('method', method, ['REML', 'DL', 'FE'])",
    "plot_heatmap(grid, vmin=0.8, vmax=0.9)",
    "section = {'profile': 1, 'value': 6, 'benchmark': 7}",
])
def test_lint_accepts(cell):
    nb = _nb('horizon: int = 6\nlags = (0, 1)\npower_target: float = 0.8\nmethod = "REML"',
             cell)
    assert lint_notebook(nb) == []


# --------------------------------------------------------------------------- the notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_lint(name):
    nb = json.loads((NB_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert lint_notebook(nb) == []
