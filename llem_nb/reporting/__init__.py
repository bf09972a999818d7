"""Layer 8, reporting: a one-file HTML report of a results DataFrame (``llem_nb.report``)."""
