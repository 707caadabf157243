"""Everything that builds the container's filesystem view: mounts, /dev, the pivot."""
