"""Shuidian server: the Sanic app and the business contexts."""
