"""Throughput of stripe_sandbox through stripe-python over HTTP: see stripe_sandbox/bench.py.

    .venv/bin/python bench/sandbox_throughput.py [--n 4000] [--procs 2] [--threads 4] [--in-process]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stripe_sandbox.bench import main  # noqa: E402

if __name__ == "__main__":
    main()
