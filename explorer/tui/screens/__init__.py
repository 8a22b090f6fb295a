"""Screens (one per file) and modal dialogs of the TUI."""
