"""mechscope's benchmarks: ``python -m bench`` runs every workload against its peers.

The package is the harness (orchestrator, worker processes, peers, report); the standalone
scripts beside it (``python bench/forward.py`` and the rest) keep working on their own.
See ``bench/README.md`` and ``docs/benchmarks.md``.
"""
