"""The in-container harness: a trusted supervisor (PID 1) and a forked child for the snippet."""

from .protocol import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
