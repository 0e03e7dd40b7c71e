"""OAuth2, JWT and OpenID Connect (issue 5, sections 3-5).

- ``config``: authorization servers (``authServerAlias``: the built-in ``local`` one and EXTERNAL
  ones) and DCR providers (``clientMetadataMapping``), validated into typed models.
- ``signing``: the local server's signing key (from a stored keystore, or a built-in key made on
  first start), its ``kid`` (RFC 7638 thumbprint) and the JWKS with keys recently rotated out.
- ``tokens``: issued access/refresh tokens and authorization codes (hashed, own tables).
- ``clients``: OAuth clients, i.e. application strategies with credentials.
- ``grants``: the token endpoint's grant types; ``discovery``, ``dcr``: talking to external servers.
- ``validate``: the token-validation core the gateway calls (JWT verification with caching,
  JWKS key sources, local and remote introspection, access tokens told from ID tokens).
- ``runtime`` (long-lived validators and outbound clients), ``view`` (one snapshot's answers:
  ``verify_jwt``, ``identify_oauth2``, ``identify_id_token``), ``local_tokens`` (local opaque tokens
  looked up with a short cache).
"""
