"""Public endpoints outside the management API (issue 5): the gateway's JWT service
(``/rest/pub/apigateway/jwt/...``), the local authorization server's OAuth2 endpoints (the
reference's ``/invoke/pub.apigateway.oauth2/...`` and a standard ``/oauth2/...`` tree) and OpenID
Connect discovery. Callers authenticate as OAuth clients (client id and secret) or, where a
resource owner is needed, as Portico users with HTTP basic; never as management users by route."""
