"""The harness: running servers for tests (serving, stopping, error reporting), the
leak audit, real misbehaving clients and the fault proxy."""
