"""Layer 2, results: what a measurement produced, at rest.

Owns the result schema (one JSON file per experiment × cycle), the atomic store, the
DataFrame loader and the importers of peers' files, timeseries files, statistics,
the shipped reference figures and the HTML views of results. Imports config only.
"""
