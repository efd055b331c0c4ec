"""Evaluation: metrics (numbers only), the predicting sink, and reports with plots."""
