"""Workflows that chain a run with its reports: ``mertk demo`` (train + report on the synthetic benchmark)
and ``mertk sweep`` (a grid of runs over seeds, then the compare table). They sit above the engine and
the report, which never import them."""
