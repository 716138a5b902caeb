"""Channel adapters: each turns its platform's payloads into ``Incoming`` and renders
``Reply`` objects back. Only modules in this package import wechatpy."""
