"""Experiment configs (ml_collections), selected with --config=configs/x.py:preset."""
