"""Evaluation commands (`aiops-dev eval ...`): each prints figures measured on real or scenario data."""
