// A passage in its context: the chunks before and after it from the same document, the
// passage itself marked, in a modal dialog (Escape closes it; focus returns to the opener).
import { t } from "/ui/i18n.js";

const dialog = () => document.getElementById("passage-dialog");

/* The document's text around chunk `index`: chunks overlap, so each neighbour adds only the
   characters the passage does not already hold (by their offsets in the document). */
function contextParts(chunks, index) {
  const cited = chunks.find((c) => c.chunk_index === index);
  if (!cited) return [];
  const before = chunks.filter((c) => c.chunk_index < index);
  const after = chunks.filter((c) => c.chunk_index > index);
  const parts = [];
  for (const c of before) parts.push(["context", c.text.slice(0, Math.max(0, cited.start - c.start))]);
  parts.push(["cited", cited.text]);
  for (const c of after) parts.push(["context", c.text.slice(Math.max(0, cited.end - c.start))]);
  return parts;
}

export async function openPassage(app, collection, passage, opener) {
  const box = dialog();
  const body = document.getElementById("passage-body");
  document.getElementById("passage-title").textContent = passage.number
    ? t("source", { n: passage.number })
    : passage.document_id;
  document.getElementById("passage-meta").textContent = t("passageOf", {
    doc: passage.document_id,
    chunk: passage.chunk_index + 1,
  });
  body.textContent = passage.text;
  box.addEventListener("close", () => opener?.focus(), { once: true });
  if (!box.open) box.showModal();
  try {
    const params = new URLSearchParams({
      document_id: passage.document_id,
      first: String(Math.max(0, passage.chunk_index - 1)),
      limit: "3",
    });
    const reply = await app.client.request(
      "GET",
      `/v1/collections/${encodeURIComponent(collection)}/chunks?${params}`,
    );
    const parts = contextParts(reply.chunks, passage.chunk_index);
    if (!parts.length) return;
    body.textContent = "";
    for (const [kind, text] of parts) {
      const span = document.createElement(kind === "cited" ? "mark" : "span");
      span.className = kind;
      span.textContent = text;
      body.append(span);
    }
    body.querySelector("mark.cited")?.scrollIntoView({ block: "center" });
  } catch (_) {
    /* the passage alone is still shown */
  }
}
