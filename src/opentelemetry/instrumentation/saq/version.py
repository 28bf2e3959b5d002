__version__ = "0.1.0"
"""This package's version."""
