"""Pipeline examples for optout manifests (each runs as a test in ../tests)."""
