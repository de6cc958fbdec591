# nbgrader configuration for the course. Run nbgrader from this folder (the course root).
# solutions/ holds the instructor notebooks (nbgrader's "source"); assignments/ holds the generated
# student release, which is committed. submitted/, autograded/, feedback/ and gradebook.db are
# nbgrader's working folders: created when a course grades, and git-ignored.
c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# checks.py: an assignment's trusted checks (solutions/<id>/checks.py) are never released, nor
# *.weights.npz: weights a notebook trained and saved beside itself (students hand in their own).
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "checks.py", "*.weights.npz",
]

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading: one cell may not run longer than this (seconds); errors are recorded, not fatal.
c.ExecutePreprocessor.timeout = 120
