"""Routers, handlers and the dispatcher that picks one handler per message."""

from bot.dispatch.context import Context, ConversationState
from bot.dispatch.dispatcher import Dispatcher
from bot.dispatch.router import Router, Stage

__all__ = ["Context", "ConversationState", "Dispatcher", "Router", "Stage"]
