"""What the bot knows how to do: one package (or, while small, one module) per feature, each
with its service, chat handlers, commands and tables. ``handlers.app`` puts them together."""
