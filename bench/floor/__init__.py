"""The floor of bench/webhooks.py (a package, so that `make bench`, which runs every
bench/*.py, does not run these modules as benchmarks)."""
