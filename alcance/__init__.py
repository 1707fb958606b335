"""The `alcance` command and the run orchestration.

The top floor: it assembles connectors, processors, web and directory on the foundation of infra and schemas.
"""
