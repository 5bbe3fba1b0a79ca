"""Lesson 06_unet's exercises."""
