"""Simulated sources (xAPI LRS, Moodle web services, PLGN feed) over one seeded world, with faults."""
