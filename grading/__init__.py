"""Instructor-only grading machinery: release build, leak check, autograder.

Never shipped to students (the release build and its leak check exclude it).
"""
