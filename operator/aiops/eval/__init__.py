"""Evaluation commands (`aiops eval ...`): each prints figures measured on real or scenario data."""
