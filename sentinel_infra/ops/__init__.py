"""Operator commands beside the program: they evaluate it offline and report, never deploy."""
