"""The management REST API (``/rest/apigateway``), a Starlette application."""
