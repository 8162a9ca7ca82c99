// Search: one box, any language; mode, result languages and a metadata filter; each hit
// with its terms or best sentence marked, its language, document, position and score, and
// a translation into the reader's language on request.
import { openPassage } from "/ui/passage.js";
import { currentLanguage, languageName, t } from "/ui/i18n.js";

const $ = (selector) => document.querySelector(selector);

function metaItem(list, label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
  return dd;
}

function searchBody() {
  const body = { query: $("#query").value.trim(), mode: $("#mode").value, k: 10 };
  const languages = $("#languages").value.split(/[\s,;]+/).filter(Boolean);
  if (languages.length) body.languages = languages;
  const filter = $("#filter").value.trim();
  if (filter) body.filter = JSON.parse(filter);
  return body;
}

export function setupSearch(app) {
  const status = $("#search-status");
  const results = $("#results");
  let last = null;

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(error));
  }

  async function translate(hit, button, holder) {
    button.disabled = true;
    holder.hidden = false;
    holder.textContent = t("translating");
    try {
      const reply = await app.client.request("POST", "/v1/translate", {
        texts: [hit.text],
        target: currentLanguage(),
      });
      holder.textContent = reply.translations[0].text;
      holder.lang = currentLanguage();
    } catch (error) {
      holder.textContent = app.describe(error);
    } finally {
      button.disabled = false;
    }
  }

  function renderHit(hit, collection) {
    const li = document.createElement("li");
    li.className = "hit";
    const text = document.createElement("p");
    text.className = "hit-text";
    text.lang = hit.language;
    text.textContent = hit.text;
    const meta = document.createElement("dl");
    meta.className = "hit-meta";
    metaItem(meta, t("hitLanguage"), `${languageName(hit.language)} (${hit.language})`).className = "hit-language";
    metaItem(meta, t("hitDocument"), hit.document_id).className = "hit-document";
    metaItem(
      meta,
      t("hitPosition"),
      t("hitPositionValue", { chunk: hit.chunk_index + 1, start: hit.start, end: hit.end }),
    );
    metaItem(meta, t("hitScore"), hit.score.toFixed(3)).className = "hit-score";
    const actions = document.createElement("div");
    actions.className = "hit-actions";
    const holder = document.createElement("p");
    holder.className = "translation";
    holder.hidden = true;
    holder.setAttribute("aria-live", "polite");
    if (hit.language !== currentLanguage()) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary translate";
      button.textContent = t("translate", { lang: languageName(currentLanguage()) });
      button.addEventListener("click", () => translate(hit, button, holder));
      actions.append(button);
    }
    const context = document.createElement("button");
    context.type = "button";
    context.className = "secondary context";
    context.textContent = t("inContext");
    context.addEventListener("click", () => openPassage(app, collection, hit, context));
    actions.append(context);
    li.append(text, meta, actions, holder);
    results.append(li);
    return { element: text, text: hit.text };
  }

  function render() {
    results.textContent = "";
    if (!last) return;
    const { reply, collection, query } = last;
    if (!reply.hits.length) {
      say(t("noResults"));
      return;
    }
    say(t("resultCount", { n: reply.hits.length, lang: languageName(reply.query_language) }));
    const items = reply.hits.map((hit) => renderHit(hit, collection));
    window.BabelSearch.highlightPassages(app.client, query, items).then(() => {
      results.dataset.highlighted = "true";
    });
  }

  $("#search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const collection = app.collection();
    let body;
    try {
      body = searchBody();
    } catch (error) {
      say(t("error", { message: `filter: ${error.message}` }), true);
      $("#filter").focus();
      return;
    }
    say(t("searching"));
    results.textContent = "";
    delete results.dataset.highlighted;
    try {
      const reply = await app.client.search(collection, body);
      last = { reply, collection, query: body.query };
      render();
    } catch (error) {
      last = null;
      say(app.describe(error), true);
    }
  });

  return { relabel: render };
}
