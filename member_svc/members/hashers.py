"""The password hasher: Argon2id with the costs OWASP's password storage guidance names.

Django's own Argon2 defaults (100 MiB, 8 lanes) cost about a quarter of a second of both
cores here per login, so a few logins a second starve every other process on a 2-core
host. OWASP's first recommended Argon2id setting (19 MiB, 2 passes, 1 lane) costs a
fifth of that. The costs come from settings; hashes made with other costs still verify,
and Django re-hashes them with these on the member's next login.
"""

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class ShopArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"  # same encoding as Django's: existing hashes keep verifying

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_TIME_COST

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_MEMORY_KIB

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return settings.ARGON2_PARALLELISM
