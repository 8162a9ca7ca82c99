"""OPTIONS answers name every method of their path.

Litestar (2.25) builds an automatic OPTIONS handler when it builds a path's route from the
first handler registered on it, and that handler reads the ``methods`` of the route it was
built for. When more handlers for the same path join later, Litestar builds a new route but
keeps the old OPTIONS handler, so ``OPTIONS /v1/files`` answered ``Allow: GET, OPTIONS``
while ``POST`` is served too. This points each automatic handler at its current route.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute


def correct_options_allow(app: Litestar) -> None:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            function = getattr(handler.fn, "__func__", handler.fn)
            if "OPTIONS" not in handler.http_methods or function.__name__ != "options_handler":
                continue
            for cell in function.__closure__ or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route
