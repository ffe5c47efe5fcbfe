# ruff: noqa: E501  (the embedded HTML/JS page is an asset, not code)
"""`/api/v2/docs`: an API reference page that works offline (no CDN).

A small HTML page that fetches `/api/v2/openapi.json` and lists every operation with its
parameters, request body and responses. Its script and style are served beside it
(`/api/v2/docs.js`, `/api/v2/docs.css`) rather than inline, so the page runs under a strict
Content-Security-Policy without 'unsafe-inline' (`app.serving.headers.DOCS_CSP`). Nothing is
loaded from another origin, so it works on air-gapped hosts.
"""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import hide

from app.api.access import public

__all__ = ["DOCS_CSS", "DOCS_HTML", "DOCS_JS", "bp"]

bp = Blueprint("apidocs", __name__)

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Floe API v2</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/v2/docs.css">
<script src="/api/v2/docs.js" defer></script>
</head><body>
<h1>Floe API v2</h1><p>Source: <a href="/api/v2/openapi.json">/api/v2/openapi.json</a>.
Errors use <code>{"status":"error","error":{"code","message","details"?},"meta"}</code>.</p>
<input id="q" placeholder="filter operations">
<div id="ops">Loading...</div>
</body></html>
"""

DOCS_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1rem;color:#1b1f24}
h1{font-size:1.4rem}.op{border:1px solid #d0d7de;border-radius:6px;margin:.5rem 0}
.op>summary{cursor:pointer;padding:.45rem .6rem;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:4.5em;font-weight:700}.get{color:#0969da}.post{color:#1a7f37}
.put,.patch{color:#9a6700}.delete{color:#cf222e}.body{padding:0 .8rem .6rem}
pre{background:#f6f8fa;padding:.5rem;overflow:auto;font-size:12px}.tag{color:#57606a;font-size:12px}
#q{width:100%;padding:.4rem;box-sizing:border-box}
"""

DOCS_JS = """const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
fetch("/api/v2/openapi.json").then(r => r.json()).then(doc => {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    if (!path.startsWith("/api/v2") && !["/healthz","/readyz","/metrics"].includes(path)) continue;
    for (const [method, op] of Object.entries(item)) {
      if (!["get","post","put","patch","delete"].includes(method)) continue;
      const parts = [];
      if (op.description || op.summary) parts.push("<p>" + esc(op.description || op.summary) + "</p>");
      if (op.parameters) parts.push("<b>Parameters</b><pre>" + esc(JSON.stringify(op.parameters, null, 2)) + "</pre>");
      if (op.requestBody) parts.push("<b>Request body</b><pre>" + esc(JSON.stringify(op.requestBody, null, 2)) + "</pre>");
      if (op.responses) parts.push("<b>Responses</b><pre>" + esc(JSON.stringify(op.responses, null, 2)) + "</pre>");
      out.push('<details class="op" data-k="' + esc((method + " " + path).toLowerCase()) + '"><summary><span class="m ' +
        method + '">' + method.toUpperCase() + "</span> " + esc(path) + ' <span class="tag">' +
        esc((op.tags || []).join(", ")) + '</span></summary><div class="body">' + parts.join("") + "</div></details>");
    }
  }
  document.getElementById("ops").innerHTML = out.join("") || "No operations.";
  if (doc.components && doc.components.schemas) {
    const s = document.createElement("details"); s.className = "op";
    s.innerHTML = "<summary>Schemas</summary><div class=body><pre>" + esc(JSON.stringify(doc.components.schemas, null, 2)) + "</pre></div>";
    document.body.appendChild(s);
  }
}).catch(e => { document.getElementById("ops").textContent = "Could not load openapi.json: " + e; });
document.getElementById("q").addEventListener("input", e => {
  const q = e.target.value.toLowerCase();
  for (const d of document.querySelectorAll("#ops .op")) d.style.display = d.dataset.k.includes(q) ? "" : "none";
});
"""


@bp.get("/api/v2/docs")
@public
async def docs() -> Response:
    return Response(DOCS_HTML, status=200, content_type="text/html; charset=utf-8")


@bp.get("/api/v2/docs.js")
@public
@hide  # assets of the page, not API operations
async def docs_script() -> Response:
    return Response(DOCS_JS, status=200, content_type="text/javascript; charset=utf-8")


@bp.get("/api/v2/docs.css")
@public
@hide
async def docs_style() -> Response:
    return Response(DOCS_CSS, status=200, content_type="text/css; charset=utf-8")
