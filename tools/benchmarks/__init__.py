"""The benchmark's measurements, one module per section; tools/bench.py runs them
and reports."""
