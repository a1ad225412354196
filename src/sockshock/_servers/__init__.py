"""The servers' side of the seam: the socket-layer protocol, its conformance kit,
the catalogue of server classes and the runner of CPython's own suite."""
