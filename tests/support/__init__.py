"""Test support: a real upstream HTTP server and a running Portico node."""
