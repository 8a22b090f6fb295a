"""pgtable-explorer: see what happens to kernel page-table pages between unlink and free."""

__version__ = "0.1.0"

# Before any simulator module is imported: use the compiled core when a fresh build of it is there
# (explorer/compiled.py; PGTABLE_EXPLORER_PURE=1 forces the pure-Python one).
from explorer import compiled as _compiled

_compiled.install()
