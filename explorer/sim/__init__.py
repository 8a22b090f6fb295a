"""The simulated kernel: event engine, page allocator, page tables, workqueue, IOMMUs, checker.

Nothing here knows about Textual, pluggy, TOML or the command line: :func:`build.build_simulation`
takes a validated config and the plugin classes and returns a :class:`build.Simulation`.
"""
