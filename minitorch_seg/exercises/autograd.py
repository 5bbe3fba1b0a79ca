"""Lesson 01_autograd's exercises."""
