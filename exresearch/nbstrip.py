"""Notebooks without outputs: the one stripping rule of the project.

A notebook under ``notebooks/`` holds code, prose and parameters, never results:
outputs carry client data (names, figures) and editor metadata changes on every
save. One function, :func:`strip_notebook`, says what is kept; three places apply it:

* the Jupyter server pre-save hook shipped in ``jupyter/jupyter_server_config.py``
  (used by ``make lab``), so a save from JupyterLab writes no outputs;
* the git clean filter ``exresearch-nbstrip`` (``.gitattributes``; installed by
  ``make setup``), so whatever the editor wrote, git only ever sees the stripped text.

The build fingerprints a notebook by its cells' type, source and tags only
(``exresearch.build.fingerprint``), so what this strips never triggers a rebuild.

Written by hand (about 60 lines, standard library only) rather than with
``nbstripout``: that package is not in the lock, and the filter must run from a bare
clone with any ``python3`` (``git`` runs it as ``python3 exresearch/nbstrip.py``,
before ``.venv`` exists); the pre-save hook must load in a researcher's own
JupyterLab, which need not have exresearch installed.

What is kept: every cell's type, id, source and attachments, and its ``tags``,
``editable``, ``deletable`` and ``name`` metadata (an empty ``tags`` list is dropped,
as papermill adds one to every cell); the notebook's metadata except
run- and editor-specific keys (``papermill``, ``widgets``, ``signature``, ...), with
``language_info`` reduced to its ``name``. Code cells get ``outputs: []`` and
``execution_count: null``. The text is written the way Jupyter writes it (sorted
keys, indent 1, UTF-8, final newline), so a stripped save is byte-identical to the
committed file.

Examples
--------
>>> nb = {"cells": [{"cell_type": "code", "id": "a", "execution_count": 3,
...        "metadata": {"tags": ["parameters"], "scrolled": True},
...        "outputs": [{"output_type": "stream", "name": "stdout", "text": "secret"}],
...        "source": "x = 1"}],
...       "metadata": {"language_info": {"name": "python", "version": "3.11.2"}},
...       "nbformat": 4, "nbformat_minor": 5}
>>> clean = strip_notebook(nb)
>>> clean["cells"][0]["outputs"], clean["cells"][0]["execution_count"]
([], None)
>>> clean["cells"][0]["metadata"], clean["metadata"]
({'tags': ['parameters']}, {'language_info': {'name': 'python'}})
"""

from __future__ import annotations

import copy
import json
import sys

__all__ = ["strip_notebook", "strip_text", "pre_save_hook",
           "pre_save_hook_for"]

#: Cell metadata that belongs to the notebook's content (all else is editor state).
KEEP_CELL_METADATA = ("tags", "editable", "deletable", "name")
#: Notebook metadata written by runs and editors, never committed.
DROP_NOTEBOOK_METADATA = (
    "papermill", "widgets", "signature", "toc", "varInspector", "vscode", "execution",
    "interpreter", "colab", "celltoolbar", "jupytext",
)


def strip_notebook(nb: dict) -> dict:
    """Return a copy of notebook ``nb`` (nbformat 4, as a dict) without outputs.

    Parameters
    ----------
    nb : dict
        A notebook as parsed from JSON (``nbformat.NotebookNode`` works too).

    Returns
    -------
    dict
        The same notebook with no outputs, no execution counts and only the metadata
        listed in the module docstring; ``nb`` is not modified.
    """
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(
            f"`nb` must be a notebook (a JSON object with a 'cells' list), but a "
            f"{type(nb).__name__} without cells was passed")
    out = copy.deepcopy(dict(nb))
    meta = dict(out.get("metadata") or {})
    for key in DROP_NOTEBOOK_METADATA:
        meta.pop(key, None)
    if isinstance(meta.get("language_info"), dict) and "name" in meta["language_info"]:
        meta["language_info"] = {"name": meta["language_info"]["name"]}
    out["metadata"] = meta
    for cell in out["cells"]:
        cell["metadata"] = {k: v for k, v in (cell.get("metadata") or {}).items()
                            if k in KEEP_CELL_METADATA and not (k == "tags" and not v)}
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return out


def _dumps(nb: dict) -> str:
    # as nbformat.writes does: the form JupyterLab saves in
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def strip_text(text: str) -> str:
    """Strip a notebook given as JSON text; return the text as Jupyter would write it.

    Examples
    --------
    >>> strip_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    '{\\n "cells": [],\\n "metadata": {},\\n "nbformat": 4,\\n "nbformat_minor": 5\\n}\\n'
    """
    return _dumps(strip_notebook(json.loads(text)))


def pre_save_hook(model, path=None, contents_manager=None, **kwargs):
    """Jupyter server pre-save hook: strip outputs from a notebook before it is written.

    Only notebooks are changed; the browser keeps showing its outputs, only the file on
    disk has none. :func:`pre_save_hook_for` limits it to one folder.
    """
    if not isinstance(model, dict) or model.get("type") != "notebook":
        return
    content = model.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        return
    clean = strip_notebook(content)
    content.clear()  # in place: the server writes model["content"]
    content.update(clean)


def pre_save_hook_for(folder):
    """A pre-save hook that strips only notebooks saved inside ``folder``.

    Set as ``c.ContentsManager.pre_save_hook`` by ``jupyter/jupyter_server_config.py``
    with the project's ``notebooks/`` folder: notebooks a researcher keeps elsewhere in
    the same JupyterLab keep their outputs.

    Examples
    --------
    >>> hook = pre_save_hook_for("/repo/notebooks")
    >>> class CM:
    ...     root_dir = "/repo"
    >>> model = {"type": "notebook", "content": {"cells": [{"cell_type": "code",
    ...          "source": "", "metadata": {}, "outputs": [1], "execution_count": 1}],
    ...          "metadata": {}}}
    >>> hook(model, path="scratch/a.ipynb", contents_manager=CM())
    >>> model["content"]["cells"][0]["outputs"]
    [1]
    >>> hook(model, path="notebooks/a.ipynb", contents_manager=CM())
    >>> model["content"]["cells"][0]["outputs"]
    []
    """
    import os

    root = os.path.realpath(folder)

    def hook(model, path=None, contents_manager=None, **kwargs):
        base = getattr(contents_manager, "root_dir", None) or os.getcwd()
        target = os.path.realpath(os.path.join(base, (path or "").lstrip("/")))
        if os.path.commonpath([root, target]) == root:
            pre_save_hook(model, path=path, contents_manager=contents_manager, **kwargs)

    return hook


def main(argv=None) -> int:
    """Git clean filter: notebook JSON on stdin, stripped JSON on stdout.

    Text that is not a notebook (a merge conflict, a half-written file) is passed
    through unchanged, so git never loses it. ``--in-place FILE ...`` strips files
    instead (``python3 exresearch/nbstrip.py --in-place notebooks/*.ipynb``) and
    rewrites only those that change.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--in-place"]:
        status = 0
        for name in argv[1:]:
            with open(name, encoding="utf-8") as fh:
                text = fh.read()
            try:
                clean = strip_text(text)
            except ValueError as exc:
                print(f"{name}: not a notebook ({exc}); left as it is", file=sys.stderr)
                status = 1
                continue
            if clean != text:
                with open(name, "w", encoding="utf-8") as fh:
                    fh.write(clean)
                print(f"{name}: stripped", file=sys.stderr)
        return status
    if argv:
        print("usage: nbstrip.py < notebook.ipynb > stripped.ipynb | "
              "nbstrip.py --in-place FILE ...", file=sys.stderr)
        return 2
    data = sys.stdin.buffer.read()
    try:
        text = strip_text(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
        sys.stdout.buffer.write(data)
        return 0
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
