"""Routers, handlers and the dispatcher that picks one handler per message."""

from bot.dispatch.context import Context
from bot.dispatch.dispatcher import Dispatcher
from bot.dispatch.router import Router, Stage
from bot.state import ConversationState

__all__ = ["Context", "ConversationState", "Dispatcher", "Router", "Stage"]
