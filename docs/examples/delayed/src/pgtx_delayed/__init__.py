"""pgtable-explorer-delayed: the free strategy delayed for pgtable-explorer (the plugin, and its version, are in strategy.py)."""
