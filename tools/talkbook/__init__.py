"""talkbook: confidential heart-to-heart talk records, plain text, git and age."""

__version__ = "0.1.0"
