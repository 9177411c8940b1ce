"""jisik (지식): Korean question answering that stays current."""

__version__ = "0.1.0"
