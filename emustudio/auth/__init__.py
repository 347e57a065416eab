"""Signing in to a Studio, the sessions that follow, and the gate in front of Workspaces.

* `signin`: one non-overridable :meth:`~signin.Authenticator.sign_in` running the stages
  authenticate -> normalize -> blocked -> allowed -> post-auth. :class:`~signin.IamUserSignIn`
  is the IAM-mode Studio's: an IAM user's console password (never root), then
  ``elasticmapreduce:CreateStudioPresignedUrl`` on the Studio, evaluated as that user.
* `sessions`: server-side sessions in the store (they outlive a gateway restart), each bound to
  one Studio, and the signed, HttpOnly, SameSite=Lax, host-only cookie that names one.
* `gate`: :class:`~gate.StudioGate`, the proxy's ``WorkspaceGate``: a session of *this* Studio,
  a running Workspace of this Studio, and ``elasticmapreduce:OpenEditorInConsole`` on it, or
  the proxy never connects.
* `permissions`: what these ask of the policy engine (``PolicyAuthorizer.allowed``).
"""

from emustudio.auth.gate import StudioGate
from emustudio.auth.permissions import Permissions
from emustudio.auth.sessions import SESSION_COOKIE, SessionStore, StudioSession
from emustudio.auth.signin import Authenticator, IamUserSignIn, SignInAttempt, SignInRefused

__all__ = [
    "SESSION_COOKIE",
    "Authenticator",
    "IamUserSignIn",
    "Permissions",
    "SessionStore",
    "SignInAttempt",
    "SignInRefused",
    "StudioGate",
    "StudioSession",
]
