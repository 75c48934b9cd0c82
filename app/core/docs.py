"""Interactive documentation at ``/docs``, served entirely by the service.

Swagger UI comes pinned from a Python package (``swagger-ui-bundle-v2``) and is served from
``/docs/assets``: the page makes no request outside the service, so it works on a locked-down
network, and a fresh install serves exactly the version the lock names.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: API documentation",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"tryItOutEnabled": False, "displayRequestDuration": True},
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
