"""CPU of the sandbox's answer per list page the import reads and per single object:
see stripe_sandbox/bench_pages.py.

    .venv/bin/python bench/sandbox_pages.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stripe_sandbox.bench_pages import main  # noqa: E402

if __name__ == "__main__":
    main()
