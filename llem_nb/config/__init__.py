"""Layer 1, config: what an experiment and a study are, before anything runs.

Owns the pydantic models (``ExperimentConfig``, its sections, ``StudyConfig``), sweep
expansion, dotted keys, the config hash, study files, and the plugin registries (names
of backends and runners, and where their classes live, without importing them).
Pure: no hardware, no I/O beyond the study files a user names. Imports only
``llem_nb.errors``.
"""
