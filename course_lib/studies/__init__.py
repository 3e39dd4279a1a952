"""Cached experiments, one file per chapter: ``distillation`` (02), ``quantization`` (03).

Each builds on its chapter's technique module (:mod:`course_lib.distill`, :mod:`course_lib.quantize`)
and on the foundation; everything it trains or measures is cached under a key of what produced it.
"""
