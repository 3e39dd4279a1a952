"""Exercise checkers, one file per chapter (checker + reference solution + the catalogue of mistakes
it names), sharing :mod:`course_lib.exercises.runner`: ``metrics`` (01), ``distillation`` (02), ``quantization`` (03),
``pruning`` (04), ``lowrank`` (05), ``stress`` (06).

Use them as ``from course_lib.exercises import distillation; distillation.check_kd_loss(my_loss)``.
"""
