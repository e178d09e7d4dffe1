"""HTTP/1.1 on our own asyncio.Protocol with httptools; CORS; responses built once."""
