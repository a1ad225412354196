"""sockshock's pytest plugin (entry point ``pytest11: sockshock``)."""
