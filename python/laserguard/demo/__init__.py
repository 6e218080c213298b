"""``laserguard demo``: start every component of the loop, show progress, summarise the run.

Owns: process orchestration (``runner``) and the human summary table (``summary``).
May import: the dashboard (metrics scraping) and any subsystem; only ``commands`` imports it.
"""
