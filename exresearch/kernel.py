"""The project kernel ``exresearch``: the notebooks run in the project's environment.

``make setup`` installs a Jupyter kernel named ``exresearch`` into ``.venv`` whose
command is ``.venv/bin/python``; the notebooks ask for it in their metadata, so they
run with the locked libraries whichever JupyterLab opens them (``make lab``, or a
researcher's own JupyterLab after ``.venv/bin/python -m exresearch.kernel --user``).

Batch runs (``exresearch run``, ``exresearch build``) execute in the environment that
runs them: :func:`kernel_for_batch` returns ``exresearch`` when that kernel is
installed and points at the running interpreter, else the interpreter's own
``python3`` kernel, so a fresh ``pip install`` without ``make setup`` still works.

Examples
--------
>>> KERNEL_NAME
'exresearch'
>>> kernel_for_batch() in ("exresearch", "python3")
True
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["KERNEL_NAME", "DISPLAY_NAME", "kernelspec", "install_kernel", "kernel_for_batch"]

#: Name of the project kernel (the notebooks' ``metadata.kernelspec.name``).
KERNEL_NAME = "exresearch"
#: What JupyterLab's launcher and kernel menu show.
DISPLAY_NAME = "Python (exresearch)"


def kernelspec() -> dict:
    """The ``kernelspec`` entry the project's notebooks carry in their metadata.

    Examples
    --------
    >>> kernelspec()
    {'display_name': 'Python (exresearch)', 'language': 'python', 'name': 'exresearch'}
    """
    return {"display_name": DISPLAY_NAME, "language": "python", "name": KERNEL_NAME}


def install_kernel(*, user: bool = False, prefix: str | None = None) -> str:
    """Install the ``exresearch`` kernel for the running interpreter; return its folder.

    Parameters
    ----------
    user : bool, default False
        Install for the current user (``~/.local/share/jupyter/kernels``), where every
        JupyterLab of that user finds it.
    prefix : str, optional
        Install under this prefix (``PREFIX/share/jupyter/kernels``); by default the
        running environment's (``sys.prefix``), where the JupyterLab of that
        environment (``make lab``) finds it.

    Returns
    -------
    str
        The kernel folder written (it holds ``kernel.json``).
    """
    from ipykernel.kernelspec import install

    if user and prefix is not None:
        raise ValueError(
            f"`user` and `prefix` exclude each other, but user=True and prefix={prefix!r} "
            "were passed")
    return install(user=user, prefix=None if user else (prefix or sys.prefix),
                   kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME)


def kernel_for_batch() -> str:
    """The kernel name batch runs pass to papermill.

    ``exresearch`` when it is installed and starts the running interpreter's
    environment; otherwise ``python3``, which ``ipykernel`` maps to the running
    interpreter.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:  # pragma: no cover - jupyter_client is a dependency
        return "python3"
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return "python3"
    exe = spec.argv[0] if spec.argv else ""
    # the same environment means the same bin folder: a venv's python is a symlink to
    # its base interpreter, so comparing the files themselves would mix environments
    same = bool(exe) and os.path.realpath(os.path.dirname(exe)) == os.path.realpath(
        os.path.dirname(sys.executable))
    return KERNEL_NAME if same else "python3"


def main(argv: list[str] | None = None) -> int:
    """``python -m exresearch.kernel [--user | --prefix DIR]``: install the kernel."""
    parser = argparse.ArgumentParser(
        prog="python -m exresearch.kernel",
        description=f"Install the Jupyter kernel {KERNEL_NAME!r} for this interpreter.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true",
                       help="install for the current user (any JupyterLab of yours finds it)")
    where.add_argument("--prefix", default=None,
                       help="install under PREFIX/share/jupyter (default: this environment)")
    args = parser.parse_args(argv)
    path = install_kernel(user=args.user, prefix=args.prefix)
    print(f"kernel {KERNEL_NAME!r} ({DISPLAY_NAME}) -> {sys.executable}, installed in {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
