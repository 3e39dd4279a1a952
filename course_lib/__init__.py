"""course_lib: the helper library shared by every chapter of the NLP model-compression workbook.

Import the modules you need, e.g. ``from course_lib import data, models, train, evaluate``.
"""

__version__ = "0.1.0"
