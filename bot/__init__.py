"""Slack ChatOps: the Bolt app, Block Kit rendering and approver resolution.

Implements the engine's notifier protocol; imports `remediation`, never `functions`.
"""
