"""Grader: a sandboxed code-execution grader for Python challenges (API and domain)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
