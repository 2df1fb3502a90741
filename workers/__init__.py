"""Shuidian background workers: collector, controller, scheduler, notifier."""
