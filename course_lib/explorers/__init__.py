"""ipywidgets explorers, one file per chapter, all built on :mod:`course_lib.explorers.base`:
``threshold`` (01), ``temperature`` (02), ``bit_width`` (03), ``sparsity`` (04), ``rank`` (05), ``stress`` (06), ``pareto`` (07: the Pareto chart and the shipped spam text box).

Use them as ``from course_lib import explorers; explorers.threshold_explorer(y, p)``.
"""

from .base import Explorer, live_explorer, slider, toggle  # noqa: F401
from .bit_width import bit_width_explorer  # noqa: F401
from .pareto import pareto_explorer, spam_textbox  # noqa: F401
from .rank import rank_explorer  # noqa: F401
from .sparsity import sparsity_explorer  # noqa: F401
from .stress import stress_explorer  # noqa: F401
from .temperature import temperature_explorer  # noqa: F401
from .threshold import threshold_explorer  # noqa: F401
