# nbgrader configuration for the course. Run nbgrader from this folder (the course root).
# solutions/ holds the instructor notebooks (nbgrader's "source"); assignments/ holds the generated
# student release, which is committed. submitted/, autograded/, feedback/ and gradebook.db are
# nbgrader's working folders: created when a course grades, and git-ignored.
import os

c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# checks.py: an assignment's trusted checks (solutions/<id>/checks.py) are never released, nor
# *.weights.npz / *.weights.safetensors: weights a notebook trained and saved beside itself
# (students hand in their own).
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "checks.py", "*.weights.npz",
    "*.weights.safetensors",
]

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading: one cell may not run longer than this (seconds); errors are recorded, not fatal.
c.ExecutePreprocessor.timeout = 120

# The exchange (release / fetch / submit / collect, and the lab's Assignment List). Without a
# JupyterHub it is exchange/ inside this course (git-ignored, owner-writable only), instead of
# nbgrader's world-writable /usr/local/share/nbgrader/exchange. On a hub, nbgrader's own
# exchange is used as the hub's administrator set it up. See cnnlib/course/exchange.py.
try:
    from cnnlib.course.exchange import local_exchange, on_jupyterhub
except ImportError:  # nbgrader run outside the course's environment: nbgrader's defaults
    pass
else:
    if not on_jupyterhub():
        try:
            c.Exchange.root = local_exchange(os.path.dirname(os.path.abspath(__file__)))
            c.ExchangeFactory.release_assignment = "cnnlib.course.exchange.LocalReleaseAssignment"
            c.ExchangeFactory.submit = "cnnlib.course.exchange.LocalSubmit"
        except OSError:  # a read-only copy of the course (the grader's sandbox): no exchange
            pass
