"""The SSE load generator: client processes on raw asyncio sockets, and their controller."""
