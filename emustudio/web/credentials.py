"""The signed-in session's temporary AWS credentials, as Identity Center's access portal offers
them ("Command line or programmatic access"): a role session (Identity Center, IAM federation)
may use its own keys with the AWS CLI or boto3, with exactly the session's permissions. An IAM
user's sign-in has no temporary credentials (the user's own access keys are made in IAM).
The page is never cached and shows only the session's own credentials."""

from __future__ import annotations

from emustudio.aws.spec import DATA_PATH
from emustudio.web.base import StudioHandler


class CredentialsHandler(StudioHandler):
    async def get(self, **_: str) -> None:
        user = self.require_user()
        found = (
            self.site.credentials.lookup(user.access_key_id)
            if self.site.credentials is not None and user.kind == "AssumedRole"
            else None
        )
        credential = found[0] if found is not None else None
        self.render(
            "credentials.html",
            **self.page_args(
                credential=credential,
                region=self.site.region,
                endpoint_url=self.endpoint_url(),
                data_path=str(DATA_PATH),
            ),
        )

    def endpoint_url(self) -> str:
        """The API endpoint as this browser reaches the gateway: a Studio host's port on
        ``localhost`` (the SDKs cannot sign for a Studio host's name)."""
        port = self.request.host.rsplit(":", 1)[1] if ":" in self.request.host else ""
        return f"{self.request.protocol}://localhost{':' + port if port else ''}"


default_handlers = [(r"/credentials", CredentialsHandler)]
