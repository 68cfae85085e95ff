// Renders /api/openapi.json as a readable list of operations, with no external code (strict CSP).
"use strict";
(async function () {
  const root = document.getElementById("docs");
  const el = (tag, text, style) => {
    const e = document.createElement(tag);
    if (text) e.textContent = text;
    if (style) Object.assign(e.style, style);
    return e;
  };
  document.body.style.cssText = "font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1f2937";
  try {
    const doc = await (await fetch("/api/openapi.json")).json();
    root.replaceChildren(el("h1", `${doc.info.title} ${doc.info.version}`), el("p", doc.info.description || ""));
    const link = el("a", "Download the OpenAPI document");
    link.href = "/api/openapi.json";
    root.append(link);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const section = el("section", null, { borderTop: "1px solid #e5e7eb", padding: "0.75rem 0" });
        const head = el("h2", null, { fontSize: "1rem", fontFamily: "ui-monospace, monospace", margin: "0" });
        head.append(el("span", method.toUpperCase() + " ", { color: "#4f46e5" }), el("span", path));
        section.append(head);
        if (op.summary || op.description) section.append(el("p", op.summary || op.description, { margin: "0.25rem 0" }));
        const codes = Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description || ""}`.trim());
        section.append(el("p", codes.join(" · "), { margin: "0", color: "#6b7280" }));
        root.append(section);
      }
    }
  } catch (e) {
    root.append(el("p", "Could not load the OpenAPI document: " + e));
  }
})();
