"""Lesson 07_atrous's exercises."""
