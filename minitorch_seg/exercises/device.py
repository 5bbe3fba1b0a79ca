"""Lesson 10_gpu's exercises."""
