"""Credentials and keys."""
