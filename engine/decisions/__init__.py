"""Decisions: slots, targeting rules, policies and the tokens that record them."""
