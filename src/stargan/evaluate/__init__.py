"""Evaluation: attribute classifier and counterfactual scores on the built-in data."""
