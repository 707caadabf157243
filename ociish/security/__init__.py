"""What the container's process may do: seccomp filters and LSM labels."""
