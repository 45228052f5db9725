"""Figures drawn in forked children (exresearch.figpar): the executed notebook and its
page are those of the synchronous route, output for output."""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not sys.platform.startswith("linux"),
                                reason="figures are drawn in children only where os.fork exists")

SETUP = """\
import os, warnings
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from exresearch import figpar, style
style.use(parallel_figures=PARALLEL)
def bars(title, n=3, **kw):
    fig, ax = plt.subplots(figsize=(3, 2), **kw)
    ax.bar([f"c{i}" for i in range(n)], range(1, n + 1))
    ax.set_title(title)
    return fig
"""
CELLS = [
    # several figures in one cell, text and tables between them, one never shown by hand
    """\
bars("one"); plt.show()
print("between one and two")
bars("two", n=5); plt.show()
display(Markdown("**a table's place**"))
bars("three"); bars("four", n=7); plt.show()
print("after three and four")
_ = bars("left open to the end of the cell")
""",
    # a figure whose drawing raises (a broken mathtext title), then text and a good figure
    """\
bars("drawn in the kernel: the cell's first"); plt.show()
fig = bars("fine"); fig.axes[0].set_xlabel(r"$\\frac{1}{$")
plt.show()
print("after the broken figure")
bars("after it"); plt.show()
""",
    # a figure whose drawing warns (a glyph the font lacks), stderr between figures
    """\
bars("first"); plt.show()
bars("glyph \\u4e2d missing"); plt.show()
print("to stderr", file=__import__("sys").stderr)
bars("last of the cell"); plt.show()
""",
    # a figure as the cell's result (execute_result), after a shown figure
    """\
bars("shown"); plt.show()
fig = bars("the result"); plt.close(fig)
fig
""",
    # no figure at all, then a figure and a cell that fails after it
    "print('no figure')",
    """\
bars("before the error"); plt.show()
raise RuntimeError("the cell fails after its figure")
""",
]
PROBE = """\
import os
try:
    os.waitpid(-1, os.WNOHANG); children = "some"
except ChildProcessError:
    children = "none"
print(figpar.active(), figpar._state.count if figpar._state else 0, plt.get_fignums(), children)
"""


def _run(parallel: bool, tmp_path, *, queue=None):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    first = f"PARALLEL = {parallel}\n"
    if queue is not None:  # how many children may wait for their turn before the kernel draws
        first += f"import exresearch.figpar; exresearch.figpar._QUEUE = {queue}\n"
    nb.cells = [nbformat.v4.new_code_cell(first + SETUP)]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"  # the page names each cell by its id
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path))
    try:
        NotebookClient(nb, km=km, allow_errors=True, timeout=120,
                       record_timing=False).execute()
    finally:
        km.shutdown_kernel(now=True)
    return nb


def _html(nb) -> str:
    """The page of the notebook without its set-up cell (which names the mode) and probe."""
    import copy

    from exresearch.site import _get_exporter

    nb = copy.deepcopy(nb)
    nb.cells = nb.cells[1:-1]
    return _get_exporter().from_notebook_node(nb)[0]  # as the site renders a report


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figpar")
    return _run(False, tmp), _run(True, tmp), _run(True, tmp, queue=0)


def test_the_notebook_is_the_synchronous_ones_output_for_output(both):
    before, after, no_queue = both
    outs = [[dict(o) for o in c.outputs] for c in before.cells[1:-1]]
    for nb in (after, no_queue):
        assert [[dict(o) for o in c.outputs] for c in nb.cells[1:-1]] == outs
        assert json.dumps([c.outputs for c in nb.cells[1:-1]], sort_keys=True) \
            == json.dumps([c.outputs for c in before.cells[1:-1]], sort_keys=True)
    # what the cells show, in this order: the test would pass on empty notebooks otherwise
    kinds = [[(o.output_type, o.get("name") or sorted(o.get("data", {})) or o.get("ename"))
              for o in c.outputs] for c in before.cells[1:-1]]
    png = ["image/png", "text/plain"]
    assert kinds[0] == [("display_data", png), ("stream", "stdout"), ("display_data", png),
                        ("display_data", ["text/markdown", "text/plain"]),
                        ("display_data", png), ("display_data", png), ("stream", "stdout"),
                        ("display_data", png)]
    # the broken figure: IPython's traceback, then the figure as text, and the cell goes on
    assert kinds[1] == [("display_data", png), ("error", "ValueError"),
                        ("display_data", ["text/plain"]), ("stream", "stdout"),
                        ("display_data", png)]
    assert kinds[2][1] == ("stream", "stderr") and "Glyph" in before.cells[3].outputs[1].text
    assert kinds[2] == [("display_data", png), ("stream", "stderr"), ("display_data", png),
                        ("stream", "stderr"), ("display_data", png)]
    assert kinds[3] == [("display_data", png), ("execute_result", png)]
    assert kinds[5] == [("display_data", png), ("error", "RuntimeError")]
    alts = [o.metadata["image/png"]["alt"] for c in before.cells[1:-1] for o in c.outputs
            if "image/png" in o.get("data", {})]
    assert alts[:2] == ["Chart: one. Bars: c0 1, c1 2, c2 3.",
                        "Chart: two. Bars: c0 1, c1 2, c2 3, c3 4, c4 5."]


def test_the_page_is_the_same(both):
    before, after, no_queue = both
    page = _html(before)
    assert page.count("<img ") == 13 and 'alt="Chart: one. Bars: c0 1, c1 2, c2 3."' in page
    assert _html(after) == page
    assert _html(no_queue) == page


def test_figures_were_drawn_in_children_which_are_gone(both):
    before, after, no_queue = both
    assert before.cells[-1].outputs[0].text == "False 0 [] none\n"
    active, count, *rest = after.cells[-1].outputs[0].text.split(" ", 2)
    # the 8 figures shown inside a cell after its first (not the cell's result) went
    # through a child, or one or two through the kernel when the children were behind;
    # all closed, no child left
    assert (active, rest) == ("True", ["[] none\n"]) and 6 <= int(count) <= 8
    # no child may wait for its turn: while one draws, the kernel draws the next itself
    active, count, *rest = no_queue.cells[-1].outputs[0].text.split(" ", 2)
    assert (active, rest) == ("True", ["[] none\n"]) and 1 <= int(count) <= 7


def test_switches_are_checked_and_off_outside_a_kernel():
    from exresearch import figpar, style
    from exresearch.exceptions import ParameterError

    with pytest.raises(ParameterError, match="`jobs` must be an integer >= 1, but 0 was passed"):
        figpar.install(jobs=0)
    with pytest.raises(ParameterError, match="`parallel_figures` must be True or False, but "
                                             "'yes' was passed"):
        style.use(parallel_figures="yes")
    style.use(parallel_figures=True)  # no kernel here: figures stay drawn as before
    assert not figpar.active() and figpar.install() is False


@pytest.mark.parametrize(("env", "expected"), [("", False), ("synthesis", True),
                                                ("data_quality, synthesis", True),
                                                ("data_quality", False)])
def test_setup_report_asks_for_it_when_the_build_names_the_notebook(
        env, expected, small_study, tmp_path, monkeypatch):
    from exresearch import report, style

    asked = []
    monkeypatch.setattr(style, "use", lambda **kw: asked.append(kw))
    monkeypatch.setenv("EXRESEARCH_PARALLEL_FIGURES", env)
    report.setup_report(study_path=small_study, output_dir=tmp_path, notebook="synthesis")
    assert asked == [{"parallel_figures": expected}]


def test_the_build_asks_for_it_in_the_synthesis_only():
    from exresearch.build import kernels

    assert kernels.worker_env({})["EXRESEARCH_PARALLEL_FIGURES"] == "synthesis"


def test_an_interrupt_kills_the_children(tmp_path):
    """Interrupted while a child draws, the kernel kills it: none is left, and the kernel
    goes on drawing figures afterwards."""
    from jupyter_client.manager import KernelManager

    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def run(code, *, interrupt_after=None):
            msg_id, out = kc.execute(code), []
            if interrupt_after is not None:
                time.sleep(interrupt_after)
                km.interrupt_kernel()
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(out)

        import time

        run("PARALLEL = True\n" + SETUP)
        start = time.monotonic()
        # a figure whose drawing takes a minute, then a long sleep: interrupted in the sleep
        run("""\
import time
from matplotlib.artist import Artist
class Slow(Artist):
    def draw(self, renderer):
        time.sleep(60)
bars("first"); plt.show()
fig = bars("slow"); fig.add_artist(Slow())
plt.show()
pids = [job.pid for job in figpar._state.live]
time.sleep(60)
""", interrupt_after=3)
        assert time.monotonic() - start < 30  # not waiting for the child to finish
        probe = run("""\
import os
print(len(pids), figpar._state.live, [os.path.exists(f"/proc/{p}") for p in pids])
bars("after"); bars("and one more"); plt.show()
print(figpar._state.count)
""")
        assert probe == "1 [] [False]\n2\n"
        # asked for no more, then again: figures in the kernel in between
        assert run("""\
style.use(); print(figpar.active()); bars("here"); plt.show()
style.use(parallel_figures=True); bars("in the kernel"); bars("in a child"); plt.show()
print(figpar.active(), figpar._state.count)
""") == "False\nTrue 1\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
