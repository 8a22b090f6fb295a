"""pgtable-explorer: see what happens to kernel page-table pages between unlink and free."""

__version__ = "0.1.0"
