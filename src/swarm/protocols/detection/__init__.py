"""Failure detection as sans-I/O cores: SWIM's probing with suspicion (`swim`), and a
synchronous driver that runs a group of them with crashes and message loss (`simulate`)."""
