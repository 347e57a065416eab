"""Authorization of API calls: the operation catalogue (data) and the policy authorizer."""

from emustudio.authz.authorizer import AccessDenied, PerAccount, PolicyAuthorizer, PolicySource
from emustudio.authz.catalog import Catalog, Plan
from emustudio.authz.resource_policies import BucketPolicies

__all__ = [
    "AccessDenied",
    "BucketPolicies",
    "Catalog",
    "PerAccount",
    "Plan",
    "PolicyAuthorizer",
    "PolicySource",
]
