// emustudio's JupyterLab extension: an open tab of a stopped Workspace says that the Workspace
// was stopped, with the way back to the Studio, instead of "Kernel died unexpectedly".
//
// When a Workspace stops, its kernel WebSocket closes and JupyterLab asks the server for the
// kernel (GET api/kernels/<id>). The gateway answers every API call of a Workspace that is not
// running with 409 and {"message", "reason": "Workspace Not Running"} (emustudio/proxy/base.py).
// JupyterLab would take that 409 for a dead kernel; this extension sees the answer first (it
// wraps the fetch of the service manager's server settings, which every API call goes through)
// and shows the gateway's message. For that one kernel request it hands JupyterLab a 503
// instead: on 503 JupyterLab waits and asks again rather than declaring the kernel dead. Every
// other request keeps the 409 (a 503 to JupyterLab's polls would raise its "Server Connection
// Error"). A request cut without any answer while the server goes down is checked with the
// gateway the same way.
//
// Plain JavaScript with no imports, so the build needs only @jupyterlab/builder (`npm run
// build` here writes ../emustudio_jupyter_ext/labextension, which is committed: the Workspace
// image installs it with the Python package and needs no node).

const STOPPED = "Workspace Not Running";
const DIALOG_ID = "emustudio-workspace-stopped";

// The Studio's home, in the form this page was opened: "/" on the Studio's host,
// "/studios/<es-id>/" in path form.
function studioHome() {
  const path = window.location.pathname;
  const at = path.indexOf("/workspaces/");
  return (at > 0 ? path.slice(0, at) : "") + "/";
}

function style(element, rules) {
  Object.assign(element.style, rules);
  return element;
}

function showStopped(message) {
  if (document.getElementById(DIALOG_ID)) {
    return;
  }
  const overlay = style(document.createElement("div"), {
    position: "fixed", inset: "0", zIndex: "100000", display: "flex",
    alignItems: "center", justifyContent: "center", background: "rgba(0, 0, 0, 0.45)",
  });
  overlay.id = DIALOG_ID;
  overlay.setAttribute("role", "alertdialog");
  overlay.setAttribute("aria-modal", "true");
  overlay.setAttribute("aria-labelledby", DIALOG_ID + "-title");
  overlay.setAttribute("aria-describedby", DIALOG_ID + "-text");
  const box = style(document.createElement("div"), {
    background: "#ffffff", color: "#16191f", maxWidth: "32rem", padding: "1.5rem",
    borderRadius: "8px", boxShadow: "0 4px 24px rgba(0, 0, 0, 0.3)",
    fontFamily: "system-ui, sans-serif", fontSize: "15px", lineHeight: "1.5",
  });
  const title = style(document.createElement("h2"), { margin: "0 0 0.75rem", fontSize: "1.3rem" });
  title.id = DIALOG_ID + "-title";
  title.textContent = "This Workspace was stopped";
  const text = style(document.createElement("p"), { margin: "0 0 1.25rem" });
  text.id = DIALOG_ID + "-text";
  text.textContent =
    "Its kernels ended with it, so this notebook can no longer run. " + message;
  const back = style(document.createElement("a"), {
    display: "inline-block", background: "#0972d3", color: "#ffffff", padding: "0.5rem 1rem",
    borderRadius: "16px", fontWeight: "700", textDecoration: "none",
  });
  back.id = DIALOG_ID + "-back";
  back.href = studioHome();
  back.textContent = "Back to the Studio";
  box.append(title, text, back);
  overlay.append(box);
  document.body.append(overlay);
  back.focus();
}

async function stoppedMessage(response) {
  if (response.status !== 409) {
    return null;
  }
  try {
    const body = await response.clone().json();
    return body && body.reason === STOPPED ? String(body.message || "") : null;
  } catch (error) {
    return null;
  }
}

const KERNEL_MODEL = /\/api\/kernels\/[^/?]+(\?|$)/;

// What JupyterLab gets for a request of a stopped Workspace: 503 for the kernel's model (so
// JupyterLab waits rather than calling the kernel dead), else the gateway's 409 as it is.
function answerFor(input, message, response) {
  const url = typeof input === "string" ? input : input.url;
  const kernel = KERNEL_MODEL.test(new URL(url, window.location.href).pathname);
  if (response && !kernel) {
    return response;
  }
  return new Response(JSON.stringify({ message, reason: STOPPED }), {
    status: kernel ? 503 : 409,
    statusText: STOPPED,
    headers: { "Content-Type": "application/json" },
  });
}

const plugin = {
  id: "@emustudio/workspace-stopped:plugin",
  description: "An open tab of a stopped Workspace says so.",
  autoStart: true,
  activate: (app) => {
    const settings = app.serviceManager.serverSettings;
    const fetchUpstream = settings.fetch;
    // Whether the gateway says now that this Workspace is not running: its message, or null.
    const stoppedNow = async () => {
      try {
        const answer = await fetchUpstream(settings.baseUrl + "api/status", {
          cache: "no-store",
          credentials: "same-origin",
        });
        return await stoppedMessage(answer);
      } catch (error) {
        return null;
      }
    };
    settings.fetch = async (input, init) => {
      let response;
      try {
        response = await fetchUpstream(input, init);
      } catch (error) {
        // A request cut without an answer, as the Workspace's server went down under it:
        // JupyterLab would say "Server Connection Error". Ask the gateway what happened.
        const message = await stoppedNow();
        if (message === null) {
          throw error;
        }
        showStopped(message);
        return answerFor(input, message, null);
      }
      const message = await stoppedMessage(response);
      if (message === null) {
        return response;
      }
      showStopped(message);
      return answerFor(input, message, response);
    };
  },
};

export default plugin;
