"""What the Users service does right after saving a user: tell whoever listens.

python emit.py            # then: eg logs -f addUserToCRM
"""

import os

from eventgateway import EventGateway

user = {
    "username": "ada",
    "firstname": "Ada",
    "lastname": "Lovelace",
    "company": "Analytical Engines Ltd",
    "email": "ada@example.com",
}

gateway = EventGateway(
    url=os.environ.get("EG_URL", "http://localhost:4000"),
    space="acme-crm",
    api_key=os.environ.get("EG_API_KEY"),
)
gateway.emit(event="user.created", data=user)
print("Event emitted: user.created")
