"""A sans-I/O TLS 1.3 engine (RFC 8446): bytes and state in, events and bytes out."""
