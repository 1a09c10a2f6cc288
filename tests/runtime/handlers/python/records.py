"""Handlers that print records: one print (or logging record) must be one log entry."""

import io
import logging
import os
import subprocess
import sys
import threading

logger = logging.getLogger("records")

BIG_LINES = 2000  # x 103 bytes: a record of ~200 KiB, more than one pipe read


def two_line_text(event, context):
    print(f"Saving user to CRM:\n{event['data']}")


def sep_newline(event, context):
    print("Saving user to CRM:", event["data"], sep="\n")


def two_prints(event, context):
    print("first print")
    print("second print")


def blank_lines(event, context):
    print("inside\n\nblank")  # kept: one entry
    print("trailing\n")  # the record's trailing blank line is a line of its own, as before
    print("to be", end=" ")
    print("continued\nhere")  # a line left open by end= is joined by the next print


def logged_exception(event, context):
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")


def other_writes(event, context):
    sys.stdout.write("one write\nof two lines\n")
    context.log("context.log\ntoo")
    print("to stderr\nas one", file=sys.stderr)
    buffer = io.StringIO()
    print("into", "a buffer", sep="\n", file=buffer)
    print(buffer.getvalue(), end="")  # one print of the buffer's text: one entry
    sys.stdout.buffer.write(b"bytes via .buffer\n")
    sys.stdout.flush()


def raw_writes(event, context):
    os.write(1, b"raw one\nraw two\n")
    subprocess.run(["printf", "child one\\nchild two\\n"], check=True)
    sys.__stdout__.write("dunder one\ndunder two\n")


def big_record(event, context):
    lines = [f"{index:06d} " + "x" * 96 for index in range(event["data"]["lines"])]
    print("\n".join(lines))
    print("after")


def threads(event, context):
    def chatter(name):
        for index in range(200):
            print(f"{name} {index}\n{name} {index} continued")

    workers = [threading.Thread(target=chatter, args=(name,)) for name in "abcd"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
