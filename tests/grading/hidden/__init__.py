"""Hidden graded tests: run by `ganlib grade` and the autograder, not released to students."""
