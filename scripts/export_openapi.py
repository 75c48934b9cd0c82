"""Write openapi/openapi.json from the app (same as `prap openapi`)."""

from app.cli import openapi

if __name__ == "__main__":
    openapi()
