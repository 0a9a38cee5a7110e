"""A mentor behind an OpenAI-compatible completion server (llama.cpp's
llama-server, llama-cpp-python's server, vLLM), reached over HTTP."""
