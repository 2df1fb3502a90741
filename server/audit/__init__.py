"""Operation log (操作日志): who did what, when, to what, and why."""
