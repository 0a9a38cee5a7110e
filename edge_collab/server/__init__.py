"""An OpenAI-compatible local server on the same engine (FastAPI, uvicorn, sse-starlette)."""
