# Jupyter server configuration of the exresearch project, used by `make lab`
# (which puts this folder on JUPYTER_CONFIG_PATH, in addition to your own configuration).
# From your own JupyterLab: `JUPYTER_CONFIG_PATH=/path/to/exresearch/jupyter jupyter lab`.
#
# Saving a notebook in the project's notebooks/ folder writes it without outputs, execution counts or editor metadata
# (exresearch/nbstrip.py says exactly what is kept): results, figures and client
# names never reach the notebooks folder, and git sees no change after Run All + save.
# The browser keeps showing the outputs; `exresearch run` writes an executed copy
# (with outputs and an HTML page) into a folder you choose.
#
# The stripping code is loaded from its file, so this works in a JupyterLab whose
# environment does not have exresearch installed.
import importlib.util
import warnings
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
_path = _root / "exresearch" / "nbstrip.py"
_spec = importlib.util.spec_from_file_location("exresearch_nbstrip_hook", _path)
_nbstrip = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_nbstrip)

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file
c.ContentsManager.pre_save_hook = _nbstrip.pre_save_hook_for(_root / "notebooks")
# JupyterLab applies the server config a second time when it links its extension, and
# jupyter_server then warns that the hook replaces itself: only that warning is hidden.
warnings.filterwarnings("ignore", message=r"Overriding existing pre_save_hook",
                        category=UserWarning)
