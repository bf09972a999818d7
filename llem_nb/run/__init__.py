"""Layer 6, run: a study, run.

Owns the plan (valid points, order, runners, checks before anything runs), the loop,
the journal, the per-dir lock, the study dir and resume, pauses between experiments,
progress events, ``RunHandle`` and ``StudyResult``. Imports runners and below; it draws
nothing: views subscribe to its progress events.
"""
