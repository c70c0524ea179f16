"""Slack ChatOps: the Bolt app, Block Kit rendering, approver resolution and the engine's Slack notifier.

Imports `remediation`, never `functions` (an import-linter contract). Modules: `app` (Bolt, routing),
`adapter` (func.HttpRequest <-> Bolt), `interactions` (buttons, modal), `commands` (`/remediate`),
`home` (App Home), `blocks`/`views`/`limits` (Block Kit within Slack's limits), `inputs` (modal
validation), `notifier` + `messages` (one message per incident), `directory` (user groups),
`web` (the Web API client), `config` (settings).
"""
