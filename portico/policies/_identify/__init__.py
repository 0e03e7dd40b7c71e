"""Identification rules of ``evaluatePolicy`` that need more than a dictionary lookup (tokens)."""
