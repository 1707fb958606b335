"""`python -m benchmarks.processors`: see `benchmarks.processors.run`."""

from benchmarks.processors.run import main

main()
