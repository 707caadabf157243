"""The OCI runtime-spec documents (config, process, state, features) and their validation."""
