"""Fakes of the outside world for tests: real protocols, in-process, on loopback."""
