"""Recloser: an OpenAI-compatible gateway that keeps applications answering through provider brownouts."""

__version__ = "0.1.0"
