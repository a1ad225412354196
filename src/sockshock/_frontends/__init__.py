"""The front ends: the pytest plugin, the command line, hypothesis strategies and
scenario files. They only compose the harness."""
