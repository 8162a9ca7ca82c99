// Documents: create and delete collections, upload files with a progress bar each, list
// the collection's documents a page at a time and delete them.
import { t } from "/ui/i18n.js";

const $ = (selector) => document.querySelector(selector);
const PAGE = 50;

/* POST a file with XMLHttpRequest: fetch reports no upload progress. */
function uploadFile(app, collection, file, metadata, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (metadata) form.append("metadata", metadata);
    const request = new XMLHttpRequest();
    request.open("POST", `${app.client.baseUrl}/v1/collections/${encodeURIComponent(collection)}/files`);
    if (app.client.apiKey) request.setRequestHeader("Authorization", `Bearer ${app.client.apiKey}`);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.upload.addEventListener("load", () => onProgress(1));
    request.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(request.responseText);
      } catch (_) {
        body = { detail: request.statusText };
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new window.BabelSearch.ApiError(request.status, body));
    });
    request.addEventListener("error", () => reject(new window.BabelSearch.ApiError(0, { code: "network" })));
    request.send(form);
  });
}

export function setupDocuments(app) {
  const tbody = $("#documents tbody");
  const status = $("#documents-status");
  const more = $("#more-documents");
  let after = null;

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(error));
  }

  function row(document_) {
    const tr = document.createElement("tr");
    tr.dataset.id = document_.id;
    for (const value of [document_.id, document_.chunks, document_.chars, document_.languages.join(", ")]) {
      const td = document.createElement("td");
      td.textContent = String(value);
      tr.append(td);
    }
    const td = document.createElement("td");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.textContent = t("delete");
    remove.setAttribute("aria-label", `${t("delete")}: ${document_.id}`);
    remove.addEventListener("click", async () => {
      if (!window.confirm(t("confirmDelete", { name: document_.id }))) return;
      try {
        await app.client.request(
          "POST",
          `/v1/collections/${encodeURIComponent(app.collection())}/documents/delete`,
          { ids: [document_.id] },
        );
        tr.remove();
      } catch (error) {
        say(app.describe(error), true);
      }
    });
    td.append(remove);
    tr.append(td);
    return tr;
  }

  async function load(reset) {
    const collection = app.collection();
    if (reset) {
      tbody.textContent = "";
      after = null;
    }
    more.hidden = true;
    if (!collection) return;
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (after) params.set("after", after);
    try {
      const reply = await app.client.request(
        "GET",
        `/v1/collections/${encodeURIComponent(collection)}/documents?${params}`,
      );
      for (const document_ of reply.documents) tbody.append(row(document_));
      after = reply.next_after;
      more.hidden = !after;
      say(tbody.childElementCount ? "" : t("noDocuments"));
    } catch (error) {
      say(app.describe(error), true);
    }
  }

  async function upload(files, metadata) {
    const collection = app.collection();
    const list = $("#uploads");
    for (const file of files) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = t("uploading", { name: file.name });
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute("aria-label", t("uploading", { name: file.name }));
      li.append(label, bar);
      list.append(li);
      try {
        const reply = await uploadFile(app, collection, file, metadata, (share) => {
          bar.value = share;
          if (share >= 1) {
            label.textContent = t("indexing", { name: file.name });
            bar.removeAttribute("value"); // indeterminate while the service extracts and embeds
          }
        });
        bar.value = 1;
        bar.max = 1;
        li.dataset.state = "done";
        label.textContent = t("uploaded", { name: file.name, chunks: reply.chunks });
      } catch (error) {
        li.dataset.state = "error";
        label.textContent = `${file.name}: ${app.describe(error)}`;
        bar.remove();
      }
    }
    load(true);
  }

  $("#upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const metadata = $("#upload-metadata").value.trim();
    if (metadata) {
      try {
        JSON.parse(metadata);
      } catch (error) {
        say(t("error", { message: `metadata: ${error.message}` }), true);
        return;
      }
    }
    upload([...$("#files").files], metadata);
    $("#files").value = "";
  });
  $("#create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#new-collection").value.trim();
    try {
      await app.client.request("POST", "/v1/collections", { name });
      $("#new-collection").value = "";
      await app.loadCollections(name);
    } catch (error) {
      say(app.describe(error), true);
    }
  });
  $("#delete-collection").addEventListener("click", async () => {
    const name = app.collection();
    if (!name || !window.confirm(t("confirmDeleteCollection", { name }))) return;
    try {
      await app.client.request("DELETE", `/v1/collections/${encodeURIComponent(name)}`);
      await app.loadCollections();
    } catch (error) {
      say(app.describe(error), true);
    }
  });
  more.addEventListener("click", () => load(false));

  return { collectionChanged: () => load(true), shown: () => load(true) };
}
