"""How the services' OpenAPI documents describe the gateway's identity: a bearer token.

A service imports this module once (e.g. in its AppConfig.ready) so drf-spectacular knows
``GatewayIdentityAuthentication``: the client sends ``Authorization: Bearer <access_token>``
to the gateway, which checks it and vouches for the member.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class GatewayIdentityScheme(OpenApiAuthenticationExtension):
    target_class = "shared.internal_auth.GatewayIdentityAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
