"""Cached experiments, one file per chapter: ``distillation`` (02), ``quantization`` (03), ``pruning`` (04),
``lowrank`` (05), ``stress`` (06).

Each builds on its chapter's technique module (:mod:`course_lib.distill`, :mod:`course_lib.quantize`,
:mod:`course_lib.prune`, :mod:`course_lib.lowrank`, :mod:`course_lib.stress`) and on the foundation;
everything it trains or measures is cached under a key of what produced it.
"""
