"""The top floor, beside the command line: the agent as a Python object ([`A2C`][a2c.api.agent.A2C])."""
