"""Sub-commands of the `laserguard` CLI (see laserguard.cli.COMMAND_MODULES)."""
