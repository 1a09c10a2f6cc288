"""The walkthrough's CRM service: saves the user from a ``user.created`` event."""


def handler(event, context):
    user = event["data"]
    print("Saving user to CRM:")
    print(user)
    return {"message": "success"}


async def async_handler(event, context):
    user = event["data"]
    print("Saving user to CRM:")
    print(user)
    return {"message": "success"}
