from shared.testing import *  # noqa: F401,F403
