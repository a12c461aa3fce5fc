#!/usr/bin/env bash
# Everything CUDA in archsearch, checked and timed in under five minutes (benchmarks/gpu_check.py; README "A GPU check in one command").
cd "$(dirname "$0")/.." && PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
