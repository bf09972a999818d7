"""llem_nb's container image definitions, shipped in the wheel as ``llem_nb.images``.

The files live in the repository's top-level ``images/`` folder; ``pyproject.toml`` maps
that folder to this package, so an installed ``llem_nb`` (``pip install 'llem_nb[docker]'``)
can build its image with no checkout. ``llem_nb.runners.docker.build`` reads ``Dockerfile``.
"""
