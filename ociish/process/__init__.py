"""The create pipeline: stage 0 (the `create` process), stage 1 (bootstrap), stage 2 (init)."""
