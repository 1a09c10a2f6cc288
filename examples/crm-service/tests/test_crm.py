"""The CRM service's own tests: a real gateway in the test process, the service deployed."""

import json
import pathlib

EVENT = json.loads((pathlib.Path(__file__).parents[1] / "event.json").read_text())


def test_a_new_user_is_saved_to_the_crm(eventgateway):
    result = eventgateway.emit("user.created", data=EVENT)
    assert result.status == 202

    invocation = eventgateway.wait_for_invocation("addUserToCRM")

    assert invocation.ok, invocation.error
    assert invocation.result == {"message": "success"}
    assert invocation.event["data"] == EVENT
    assert invocation.logs == ["Saving user to CRM:\n" + repr(EVENT)]


def test_an_event_without_a_user_fails_loudly(eventgateway):
    invocation = eventgateway.invoke("addUserToCRM", event="user.created")  # no data at all

    assert not invocation.ok
    assert invocation.error["errorType"] == "KeyError"
