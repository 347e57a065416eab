"""Authorization of API calls: the operation catalogue (data) and the policy authorizer."""

from emustudio.authz.authorizer import AccessDenied, PolicyAuthorizer, PolicySource
from emustudio.authz.catalog import Catalog, Plan

__all__ = ["AccessDenied", "Catalog", "Plan", "PolicyAuthorizer", "PolicySource"]
