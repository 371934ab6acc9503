"""The fault campaign (`make soak`): the real service under kills, restarts, exchange faults
and bad input, counting orders lost or duplicated and 5xx answers. Not part of `make test`."""
