"""python -m benchmarks.toy"""
from benchmarks.toy.cli import main

main()
