"""A server doing rounds loads no renderer, FHIR model or PostgreSQL driver it does not use
(issue 19: the server's RSS). Each is loaded by the call that needs it."""

from __future__ import annotations

import json
import subprocess
import sys

LOADED_ON_USE = ("reportlab", "fhir.resources", "psycopg")


def test_the_server_module_loads_no_renderer_fhir_model_or_pg_driver() -> None:
    probe = ("import json, sys, medservice.server, medservice.cli\n"
             "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    loaded = json.loads(out)
    assert "medservice.server" in loaded and "grpc" in loaded  # it saw the server's modules
    assert [m for m in loaded if m.startswith(LOADED_ON_USE)] == []
