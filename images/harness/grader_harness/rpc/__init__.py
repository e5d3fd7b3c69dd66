"""A data-only RPC between the judge (runs hidden tests) and the learner side (runs learner code).

``serve.serve(channel, modules)`` runs in the learner's process; ``remote.RemoteSession`` runs
in the judge's and puts proxies of the learner's modules into ``sys.modules``. Only exact data
crosses by value; everything else is a handle (see ``codec.py`` for the wire format,
``proxy.py`` for the trust rules). Stdlib only; ``fixtures.py`` imports pytest lazily.
"""

from .channel import (
    MAX_FRAME_BYTES,
    Channel,
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
    InvalidFrame,
)
from .endpoint import ProtocolError, RemoteTimeout, RpcError, SessionClosed
from .errors import RemoteError, RemoteImportError

__all__ = [
    "MAX_FRAME_BYTES",
    "Channel",
    "ChannelClosed",
    "ChannelError",
    "ChannelTimeout",
    "FrameTooLarge",
    "InvalidFrame",
    "ProtocolError",
    "RemoteError",
    "RemoteImportError",
    "RemoteTimeout",
    "RpcError",
    "SessionClosed",
]
