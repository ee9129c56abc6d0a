"""``tempo-kit serve``: an OpenAI-compatible server for questions about videos, sharing one video cache.

Built on FastAPI + uvicorn. Why these and not LitServe (Lightning's server, which installs as
cleanly beside torch): the server's work is in its routes, not in a model loop — the OpenAI chat
schema with ``video_url`` parts, streaming over server-sent events, a shared video cache whose
single-flight opens and LRU evictions live in one process's memory, per-request cancellation,
bearer keys and one-line JSON errors. FastAPI gives each of these directly; LitServe runs the
model in separate worker processes behind a ZeroMQ queue, where a cache of decoded videos and
their SVLM prefixes shared by all requests, and a client's disconnect reaching the generation,
would have to cross process boundaries. FastAPI and uvicorn are also what the ``demo`` extra's
Gradio already installs.

Modules: :mod:`~.protocol` (request → checked question), :mod:`~.media` (file, upload and URL
rules), :mod:`~.cache` (the shared video cache), :mod:`~.worker` (the model thread),
:mod:`~.streaming` (tokens as generated, stop on disconnect), :mod:`~.responses` (the JSON),
:mod:`~.metrics` (Prometheus text), :mod:`~.app` (the routes), :mod:`~.command` (the CLI verb),
:mod:`~.client` (``chat``/``demo`` ``--server``).
"""
