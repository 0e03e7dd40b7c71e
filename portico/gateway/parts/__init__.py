"""Snapshot parts: each module here registers ``@snapshot_part`` builders that add indexes
(aliases, packages, plans, ...) to every configuration snapshot. Imported by the snapshot."""
