"""C kernels behind the middleware, with argument checking in Python.

Each kernel lives in a module of its own (``hilbert``, ``checksum``, ``region``,
``decomposition``); the compiled bindings are the ``_``-prefixed modules.
"""
