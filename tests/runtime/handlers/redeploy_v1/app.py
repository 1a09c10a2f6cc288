import os
import time


def handler(event, context):
    time.sleep(event["data"].get("seconds", 0))
    return {"version": 1, "pid": os.getpid()}
