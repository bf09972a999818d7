"""Serving: a load generator over an OpenAI-compatible HTTP API, the servers it drives.

``arrivals`` draws request times; ``client`` sends them (asyncio + aiohttp, imported
lazily: the ``serving`` extra); ``server`` starts and stops vLLM's own OpenAI server;
``openai`` is the backend for a server llem_nb did not start.
"""
