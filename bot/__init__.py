"""unionbot: a chat-bot service for the messaging groups of Chinese trade unions."""

__version__ = "0.1.0"
