"""Layer 7, study: the notebook-facing builder.

Owns ``Study`` (build, preview, save, run, resume) and ``run_experiment``. Imports run
and below.
"""
