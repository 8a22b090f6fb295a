"""The Textual face of pgtable-explorer: configure, run live, compare, inspect plugins.

It drives :class:`explorer.session.Session` objects and reads their snapshots; it never touches
the simulator.
"""
