"""OpenAPI 3.0 / 3.1 and Swagger 2.0 import, normalization and rendering.

``import_spec`` turns an uploaded document into the stored ``apiDefinition`` model,
``render`` turns that model back into an OpenAPI 3 or Swagger 2 document, ``operations``
lists the resources the gateway exposes, ``carry_exposure`` keeps their ``enabled`` flags
across an update, and ``fetch_spec`` downloads a document by URL.
"""

from portico.specs.fetch import fetch_spec
from portico.specs.importer import ImportedSpec, import_spec
from portico.specs.load import SpecError
from portico.specs.normalize import carry_exposure, operations
from portico.specs.render import render

__all__ = ["ImportedSpec", "SpecError", "carry_exposure", "fetch_spec", "import_spec", "operations", "render"]
