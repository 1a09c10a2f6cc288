"""The CRM service: saves every new user into the marketing team's CRM."""


def handler(event, context):
    """Called once per `user.created` event; `event["data"]` is the user."""
    user = event["data"]
    print("Saving user to CRM:", user, sep="\n")
    # A real service would call the CRM's API here.
    return {"message": "success"}
