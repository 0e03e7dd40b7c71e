"""Policy actions: one module per template key, registered in :mod:`portico.policies.registry`."""
