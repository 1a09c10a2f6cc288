"""Handlers that report on themselves or misbehave, one behaviour each."""

import asyncio
import logging
import os
import sys
import time

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

LOADED_AT = time.time()


def noop(event, context):
    return None


def echo(event, context):
    return {"event": event, "pid": os.getpid()}


async def async_echo(event, context):
    await asyncio.sleep(0)
    return {"event": event, "pid": os.getpid(), "async": True}


def hold(event, context):
    """Sleeps ``event["data"]["seconds"]``, then says who ran it."""
    time.sleep(event["data"]["seconds"])
    return {"pid": os.getpid(), "loaded_at": LOADED_AT}


def context_fields(event, context):
    context.log("via context.log")
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "aws_request_id": context.aws_request_id,
        "request_id": context.request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "logger": type(context.logger).__name__,
        "env": {
            name: os.environ.get(name)
            for name in (
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION",
                "GREETING",
                "SECRET_OF_THE_GATEWAY",
            )
        },
        "cwd": os.getcwd(),
        "sys_path_0": sys.path[0],
    }


def logs(event, context):
    logger.info("info from the module logger")
    logging.getLogger().warning("warning from the root logger")
    context.logger.error("error from context.logger")
    print("to stderr", file=sys.stderr)
    print("no newline at the end", end="")
    return "logged"


def boom(event, context):
    raise ValueError("the answer is not 42")


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


def boom_unprintable(event, context):
    raise Unprintable()


def not_json(event, context):
    return {"when": object()}


def sleep_forever(event, context):
    print("going to sleep")
    time.sleep(3600)


def hog(event, context):
    chunks = []
    while True:
        chunks.append(bytearray(16 * 1024 * 1024))


def exit3(event, context):
    print("about to exit")
    os._exit(3)


def segfault(event, context):
    import ctypes

    ctypes.string_at(0)


def chatty(event, context):
    line = "x" * 100
    while True:
        print(line)


def escape(event, context):
    """Leaves a grandchild in its own session holding stdout, then dies."""
    import subprocess

    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    print(f"grandchild {child.pid}")
    os._exit(1)


def hog_then_exit(event, context):
    """Touches ``event["data"]["mb"]`` MiB, then dies without answering."""
    hog = bytearray(event["data"]["mb"] * 1024 * 1024)
    for offset in range(0, len(hog), 4096):
        hog[offset] = 1
    os._exit(1)


def hog_then_sleep(event, context):
    """Touches ``event["data"]["mb"]`` MiB, then sleeps past any timeout."""
    hog = bytearray(event["data"]["mb"] * 1024 * 1024)
    for offset in range(0, len(hog), 4096):
        hog[offset] = 1
    print("holding it")
    time.sleep(3600)


def forge_result(event, context):
    """Writes a result frame of its own, with nonsense figures, to the worker's result pipe."""
    import json
    import struct

    out_fd = json.loads(sys.argv[1])["out_fd"]
    head = json.dumps({"type": "result", "seq": 1, "ok": True, **event["data"]}).encode()
    os.write(out_fd, struct.pack(">II", len(head), 2) + head + b"{}")
    return "the real answer"


def child_ignoring_sigterm(event, context):
    """Starts a child (in the worker's process group) that ignores SIGTERM, once it does."""
    import subprocess

    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('armed', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"armed\n"
    return {"worker": os.getpid(), "child": child.pid}


def child_then_exit(event, context):
    """Starts a child (in the worker's process group), then dies."""
    import subprocess

    child = subprocess.Popen(["sleep", "60"])
    print(f"child {child.pid}", flush=True)
    os._exit(3)


def fork_then_exit(event, context):
    """Forks a copy that holds the worker's pipes (as multiprocessing does), then dies."""
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    print(f"child {pid}", flush=True)
    os._exit(3)


def setsid_fork_then_exit(event, context):
    """Forks a copy that leaves the worker's group (so no group kill reaches it) holding
    the worker's pipes, then dies: only the worker's exit can tell the gateway."""
    pid = os.fork()
    if pid == 0:
        os.setsid()
        time.sleep(60)
        os._exit(0)
    print(f"child {pid}", flush=True)
    os._exit(3)


def family_to_file(event, context):
    """Starts a child, writes "<worker pid> <child pid>" to ``event["data"]["path"]``; then
    sleeps ``seconds`` or leaves a non-daemon thread running that long."""
    import subprocess
    import threading

    data = event["data"]
    child = subprocess.Popen(["sleep", "60"])
    with open(data["path"] + ".tmp", "w") as file:
        file.write(f"{os.getpid()} {child.pid}")
    os.rename(data["path"] + ".tmp", data["path"])
    if data["thread"]:
        threading.Thread(target=time.sleep, args=(data["seconds"],)).start()
        return "left a thread running"
    time.sleep(data["seconds"])
    return "slept"
