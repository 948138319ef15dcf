"""Command line: `python -m grading {release|autograde|collect-manual|gradescope} ...`.

Each command lives in its own module (COMMANDS), imported only when asked for, so
the release build works without the grading machinery. Exit codes: 0 done, 1 a
failure to fix, 2 a usage error (an unknown command included).
"""
import importlib
import sys

COMMANDS = {
    "release": ("grading.release", "build the student release into OUTDIR and leak-check it"),
    "autograde": ("grading.autograde", "grade a folder of submissions"),
    "collect-manual": ("grading.collect_manual",
                       "merge manual scores from OUT/gradebook.db into OUT/grades.csv"),
    "gradescope": ("grading.gradescope", "build the Gradescope autograder bundle"),
}


def usage():
    lines = ["usage: python -m grading COMMAND [ARGS]  (COMMAND --help for details)", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"unknown command {argv[0]!r}.\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
