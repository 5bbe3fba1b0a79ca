"""Lesson 09_hrnet's exercises."""
