"""Thin wrappers over Linux kernel interfaces the stdlib lacks (ctypes, no lookups)."""
