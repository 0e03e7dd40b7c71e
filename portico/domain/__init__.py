"""Typed models of the assets Portico manages. Field names follow the reference's vocabulary."""
