"""Sharing services: common accounts, the period runs, losses and the compliance statement."""
