"""Benchmark of issue 6: latency, throughput and cost of a run, ours against naive and a peer.

``python -m bench.run`` (``--quick`` for a smoke run). See ``bench/README.md``.
"""
