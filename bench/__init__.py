"""Serving benchmarks and checks: `make serve`, `make bench`, `make parity`."""
