"""Services of the v1 contract whose issues have not landed yet.

They are registered so that reflection shows the whole API, and each of their methods
answers UNIMPLEMENTED (after authentication) with reason NOT_YET_IMPLEMENTED. The README
lists them as planned.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import code_pb2

from medservice.api.errors import simple_status
from medservice.api.rpc import abort


def planned(base: type, issue: str) -> Any:
    """An instance of the generated servicer `base` whose every RPC is UNIMPLEMENTED."""
    return planned_class(base, issue)()


def planned_class(base: type, issue: str) -> Any:
    """A subclass of the generated servicer `base` whose every RPC is UNIMPLEMENTED; a
    servicer that implements some RPCs of a service derives from it."""

    def unimplemented(name: str) -> Any:
        def method(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            abort(context, simple_status(
                code_pb2.UNIMPLEMENTED, "NOT_YET_IMPLEMENTED",
                f"{name} is planned ({issue}) and not implemented yet"))

        return method

    rpcs = [n for n in vars(base) if n[:1].isupper()]
    return type(f"Planned{base.__name__}", (base,), {n: unimplemented(n) for n in rpcs})
