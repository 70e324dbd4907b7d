"""mertk: facial micro-expression recognition toolkit.

The package is laid out as the pipeline runs: ``data`` (native loaders, label maps, composites,
synthetic benchmark) -> ``preprocess`` -> ``models`` -> ``engine`` -> ``explain`` / ``report`` /
``realtime``; ``cli`` is a thin layer over importable functions.
"""

__version__ = "0.1.0"
