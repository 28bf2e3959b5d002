"""The demo: a Litestar shop whose requests hand work to SAQ workers.

Run it with ``python -m examples.demo`` (see the README's quick start).
"""
