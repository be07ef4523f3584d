/* Renders /openapi.json as a compact reference (works offline, unlike the CDN-based Swagger UI). */
(() => {
  "use strict";
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  };
  const typeOf = (schema, spec) => {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.anyOf) return schema.anyOf.map((s) => typeOf(s, spec)).join(" | ");
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (schema.type === "array") return `${typeOf(schema.items, spec)}[]`;
    if (schema.format === "binary") return "file";
    return schema.type || "";
  };
  const row = (...cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)));

  document.addEventListener("DOMContentLoaded", async () => {
    const spec = await (await fetch("/openapi.json")).json();
    document.getElementById("api-title").textContent = `${spec.info.title} ${spec.info.version} — HTTP API`;
    const desc = document.getElementById("api-description");
    (spec.info.description || "").split("`").forEach((part, i) => desc.append(i % 2 ? el("code", {}, part) : part));
    const root = document.getElementById("endpoints");
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const card = el("section", { class: "panel endpoint" });
        card.append(el("h3", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), el("code", {}, path),
                       el("span", { class: "tag" }, op.summary || "")));
        if (op.parameters && op.parameters.length) {
          const table = el("table");
          for (const p of op.parameters) {
            table.append(row(el("code", {}, p.name), `${p.in} · ${typeOf(p.schema, spec)}${p.required ? " · required" : ""}`));
          }
          card.append(el("h4", {}, "Parameters"), table);
        }
        const body = op.requestBody && op.requestBody.content && op.requestBody.content["multipart/form-data"];
        if (body && body.schema && body.schema.properties) {
          const table = el("table");
          const required = new Set(body.schema.required || []);
          for (const [name, prop] of Object.entries(body.schema.properties)) {
            const desc = [typeOf(prop, spec), required.has(name) ? "required" : "", prop.description || ""].filter(Boolean).join(" · ");
            table.append(row(el("code", {}, name), desc));
          }
          card.append(el("h4", {}, "Multipart form fields"), table);
        }
        const table = el("table");
        for (const [code, resp] of Object.entries(op.responses || {})) {
          const types = resp.content ? Object.keys(resp.content).join(", ") : "";
          table.append(row(el("code", {}, code), [resp.description, types].filter(Boolean).join(" · ")));
        }
        card.append(el("h4", {}, "Responses"), table);
        root.append(card);
      }
    }
  });
})();
