"""Thin Azure Functions triggers: binding in, one engine call, binding result out.

One module per entry point, each exposing a `func.Blueprint` named `bp` that `function_app.py`
registers. No business rules live here; they are in `remediation/`.
"""
