"""convosim: multi-agent simulation of multi-turn, multi-task tool-use dialogues."""

__version__ = "0.1.0"
