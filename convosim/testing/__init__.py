"""Test helpers shipped with convosim: an OpenAI-compatible scripted chat server."""

from convosim.testing.server import ChatReply, FaultPlan, ScriptedChatServer

__all__ = ["ChatReply", "FaultPlan", "ScriptedChatServer"]
