"""Persisted container state under the state root (default /run/ociish)."""
