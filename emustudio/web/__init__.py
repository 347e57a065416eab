"""The HTTP side: the AWS API endpoint, health, and (later) the Studio and console pages."""
