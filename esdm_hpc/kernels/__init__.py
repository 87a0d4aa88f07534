"""C kernels behind the middleware, with argument checking in Python.

Each kernel is a module of its own: ``hilbert`` (curve keys and Hilbert-order
serialisation), ``checksum`` (per-block digests), ``region`` (box algebra and
overlap detection), ``boxindex`` (spatial index and read-cover planning) and
``decomposition`` (process grids); ``boxes`` checks box arguments for them.
The compiled bindings are the ``_``-prefixed modules.
"""
