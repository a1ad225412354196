"""Pure fault models and the plan that composes them (no sockets, clocks or threads)."""
