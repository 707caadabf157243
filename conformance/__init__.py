"""Runtime-agnostic OCI runtime-spec v1.3.0 conformance suite (see README.md)."""
