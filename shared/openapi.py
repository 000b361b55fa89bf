"""OpenAPI description of the gateway's identity, so every service's schema says "Bearer JWT".

drf-spectacular finds this extension once the module is imported; a service imports it
from its app's ``ready()``.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class GatewayIdentityScheme(OpenApiAuthenticationExtension):
    target_class = "shared.internal_auth.GatewayIdentityAuthentication"
    name = "BearerAuth"

    def get_security_definition(self, auto_schema):
        # The client sends the access token to the gateway; the service sees the vouched identity.
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
