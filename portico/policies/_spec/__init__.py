"""API-specification validation shared by ``validateAPISpec`` and ``validateSchema``.

``compile.SpecIndex`` turns an API's stored ``apiDefinition`` into per-operation validators once
per configuration snapshot; ``checks`` runs them against one request or response. Private to
the policies package (the registry skips modules starting with an underscore)."""
