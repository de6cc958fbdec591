"""`python -m cnnlib <command> ...`: the course's command line.

Each command lives next to the code it drives and exposes ``main(argv) -> int``; importing it only
when asked keeps `python -m cnnlib grade` from loading torch and `summary` from loading nbgrader.
"""

import importlib
import sys

COMMANDS = {
    "summary": ("cnnlib.torch.summary", "per-layer table of a zoo model: shapes, memory, FLOPs"),
    "grade": ("cnnlib.grading.autograde", "grade a whole class's submissions safely, in parallel"),
    "formgrade": ("cnnlib.grading.formgrade", "nbgrader's formgrader on the grader's gradebook"),
    "pretrain": ("cnnlib.pretrained.pretrain", "retrain a course network's pretrained weights"),
}


def usage() -> str:
    lines = ["usage: python -m cnnlib <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\n`python -m cnnlib <command> --help` tells more.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
