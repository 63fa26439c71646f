"""The study: profiles, the notebook runner and the book.

``refinenet study run --profile smoke`` converts each notebook in ``notebooks/`` (jupytext
percent-format ``.py`` files) and executes it with papermill into ``results/<profile>/``;
``refinenet study book`` builds the Jupyter Book from what ``results/`` holds. Inside a
notebook, :func:`refinenet.study.notebook.start` sets up the device, the data set, the output
folder and the note that says which profile and data produced the page.
"""

from .profiles import PROFILE_NAMES, Profile, load_profile
from .runner import NotebookResult, find_notebooks, run_study

__all__ = [
    "PROFILE_NAMES",
    "NotebookResult",
    "Profile",
    "find_notebooks",
    "load_profile",
    "run_study",
]
