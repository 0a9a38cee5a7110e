"""Evaluation on real benchmarks: data, prompts, answer checking, runs and reports."""
