"""Portico's data plane: HTTP server, upstream client and the request path between them."""
