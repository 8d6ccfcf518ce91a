"""Helpers shared by the integration tests (polling, stack and client set-up, checks); not tests."""
