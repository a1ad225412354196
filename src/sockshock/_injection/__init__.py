"""The injection layer: the only code that carries fault decisions out on sockets
(real ones, TLS over them, or in-memory ones)."""
