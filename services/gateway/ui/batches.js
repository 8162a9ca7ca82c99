// Batches (the OpenAI Batch API shape): list with live progress, cancel. A gateway without
// the batch API answers 404, and the panel says so.
import { t } from "/ui/i18n.js";

const $ = (selector) => document.querySelector(selector);
const ACTIVE = new Set(["validating", "in_progress", "finalizing", "cancelling"]);
const POLL_MS = 2000;

export function setupBatches(app) {
  const table = $("#batches");
  const tbody = $("#batches tbody");
  const status = $("#batches-status");
  let timer = null;

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(error));
  }

  function cell(tr, content) {
    const td = document.createElement("td");
    if (typeof content === "string") td.textContent = content;
    else td.append(...content);
    tr.append(td);
  }

  function row(batch) {
    const tr = document.createElement("tr");
    tr.dataset.id = batch.id;
    const counts = batch.request_counts || { total: 0, completed: 0, failed: 0 };
    const bar = document.createElement("progress");
    bar.max = Math.max(counts.total, 1);
    bar.value = counts.completed + counts.failed;
    bar.setAttribute("aria-label", `${t("progress")}: ${batch.id}`);
    const numbers = document.createElement("span");
    numbers.textContent = ` ${counts.completed}/${counts.total}` + (counts.failed ? ` · ${t("failedCount", { n: counts.failed })}` : "");
    cell(tr, batch.id);
    cell(tr, batch.endpoint || "");
    cell(tr, batch.status);
    cell(tr, [bar, numbers]);
    cell(tr, batch.created_at ? new Date(batch.created_at * 1000).toLocaleString(document.documentElement.lang) : "");
    const actions = [];
    if (ACTIVE.has(batch.status) && batch.status !== "cancelling") {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "danger";
      cancel.textContent = t("cancel");
      cancel.setAttribute("aria-label", `${t("cancel")}: ${batch.id}`);
      cancel.addEventListener("click", async () => {
        try {
          await app.client.request("POST", `/v1/batches/${encodeURIComponent(batch.id)}/cancel`);
          load();
        } catch (error) {
          say(app.describe(error), true);
        }
      });
      actions.push(cancel);
    }
    cell(tr, actions);
    return tr;
  }

  async function load() {
    clearTimeout(timer);
    try {
      const reply = await app.client.request("GET", "/v1/batches?limit=50");
      tbody.textContent = "";
      for (const batch of reply.data) tbody.append(row(batch));
      table.hidden = !reply.data.length;
      say(reply.data.length ? "" : t("noBatches"));
      const visible = !$("#panel-batches").hidden;
      if (visible && reply.data.some((batch) => ACTIVE.has(batch.status))) timer = setTimeout(load, POLL_MS);
    } catch (error) {
      table.hidden = true;
      status.dataset.state = error.status === 404 ? "unavailable" : "error";
      say(error.status === 404 ? t("batchesUnavailable") : app.describe(error), error.status !== 404);
    }
  }

  $("#refresh-batches").addEventListener("click", load);
  return { shown: load };
}
