"""``python -m bench``: every workload, every installed peer, one report (see bench/orchestrator.py)."""

import sys

from bench.orchestrator import main

sys.exit(main())
