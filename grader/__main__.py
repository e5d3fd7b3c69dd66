"""``python -m grader``: the same command line as ``grader``."""

from .cli import app

app()
