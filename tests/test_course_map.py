"""The course map is data: lectures/course.yml names every lecture, the README's table is
generated from it and the measured times, and nothing in it is typed by hand."""

from __future__ import annotations

from course import ROOT, assignment_ids, course_notebooks

from cnnlib.course import catalog


def test_every_lecture_notebook_has_an_entry_and_every_entry_a_notebook():
    listed = [lecture.notebook for lecture in catalog.lectures(ROOT)]
    on_disk = [p.name for p in course_notebooks("lectures") if p.name != catalog.MAP_NOTEBOOK]
    assert sorted(listed) == sorted(on_disk), "lectures/course.yml and lectures/ disagree"
    assert len(set(listed)) == len(listed)


def test_prerequisites_come_earlier_and_assignments_exist():
    seen = set()
    for lecture in catalog.lectures(ROOT):
        assert set(lecture.prerequisites) <= seen, (
            f"{lecture.id}: prerequisites {lecture.prerequisites} must be lectures listed earlier")
        assert lecture.assignment is None or lecture.assignment in assignment_ids()
        assert lecture.topics, f"{lecture.id} lists no topics"
        seen.add(lecture.id)


def test_the_readme_map_is_current():
    readme = (ROOT / "README.md").read_text()
    assert catalog.readme_with_map(readme, ROOT) == readme, "run `make course-map` and commit"


def test_measured_times_belong_to_lectures_and_say_where_they_were_taken():
    timings = catalog.load_timings(ROOT)
    ids = {lecture.id for lecture in catalog.lectures(ROOT)}
    assert set(timings["lectures"]) <= ids
    for modes in timings["lectures"].values():
        for mode, times in modes.items():
            assert mode in timings["runs"], f"{mode}: no record of the machine it ran on"
            assert times["wall_s"] > 0 and times["cpu_s"] >= 0


def test_the_map_shows_unmeasured_lectures_as_such(tmp_path):
    (tmp_path / "lectures").mkdir()
    (tmp_path / "lectures" / "course.yml").write_text(
        "lectures:\n  - notebook: 01_intro.ipynb\n    topics: [a, b]\n    assignment: null\n"
        "    prerequisites: []\n")
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lecture 1: Intro")])
    nbformat.write(nb, tmp_path / "lectures" / "01_intro.ipynb")
    table = catalog.course_map_markdown(tmp_path)
    assert "[01 Intro](lectures/01_intro.ipynb) | a; b |  | - | not measured" in table
