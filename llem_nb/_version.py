"""The llem_nb version: the one place it is written (pyproject.toml reads it from here).

A literal, not a package-metadata lookup: ``importlib.metadata`` cost ~20 ms of every
``import llem_nb`` (each subprocess worker and container pays it).
"""

__version__ = "0.1.0"
