"""Guards: who may open which stream (docs/security.md).

`jwt` verifies a token into a `Principal` (sans-I/O); `keys` holds a guard's keys, inline
or fetched from a JWKS URL; `guard` finds a request's token and caches verified ones;
`authorize` is the guard step of a stream request, with its RFC 6750 answers.
"""
