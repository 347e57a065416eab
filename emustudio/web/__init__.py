"""The HTTP pages: each Studio's, the console's, sign-in's (the AWS API endpoint, the API's
front door, is `emustudio.aws_handler`, beside the pipeline it feeds).

Studio pages, a module per concern, each ending with its ``default_handlers`` URL table
(`routes` mounts them on the Studio's host and under ``/studios/<es-id>/``):

* `signin`: the sign-in and sign-out pages (the flow itself is ``auth.signin``);
* `workspaces`: the Workspace list and its create, start, stop, delete and open buttons;
* `events`: a Workspace's live start progress and status, as Server-Sent Events;
* `base`: the handler base (which Studio, who is signed in, XSRF and origin checks, HTML
  errors); `console`: EMR operations called as the signed-in user; `site`: the parts and the
  Application settings the pages need.

Templates (autoescaped) are in ``templates/``, the stylesheet and script in ``static/``.
"""
