"""Automated explanations of nodes: explain, simulate and score (docs/explanations.md)."""
