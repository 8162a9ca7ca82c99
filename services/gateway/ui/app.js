// The /ui app: shared state (API client, collection), tabs, language and key; each panel
// lives in its own module.
import { LANGUAGES, chooseLanguage, currentLanguage, setLanguage, t } from "/ui/i18n.js";
import { setupAsk } from "/ui/ask.js";
import { setupBatches } from "/ui/batches.js";
import { setupDocuments } from "/ui/documents.js";
import { setupSearch } from "/ui/search.js";

const KEY_STORAGE = "babel.apiKey";
const $ = (selector) => document.querySelector(selector);

const app = {
  client: new window.BabelSearch.Client(window.location.origin, sessionStorage.getItem(KEY_STORAGE) || ""),
  collection: () => $("#collection").value,
  panels: {},
  /* An error as a sentence for the reader. */
  describe(error) {
    if (error.code === "network") return t("network");
    if (error.status === 401 || error.status === 403) return t("unauthorized");
    return t("error", { message: error.message });
  },
  notify(message) {
    const notice = $("#notice");
    notice.textContent = message || "";
    notice.hidden = !message;
  },
  async loadCollections(select) {
    let names = [];
    try {
      const reply = await app.client.request("GET", "/v1/collections");
      names = reply.collections.map((c) => c.name);
      app.notify(names.length ? "" : t("noCollections"));
    } catch (error) {
      app.notify(app.describe(error));
    }
    const picker = $("#collection");
    const wanted = select || picker.value || localStorage.getItem("babel.collection");
    picker.textContent = "";
    for (const name of names) picker.append(new Option(name, name));
    if (names.includes(wanted)) picker.value = wanted;
    picker.dispatchEvent(new Event("change"));
  },
};

// ------------------------------------------------------------------ tabs (arrow keys move)
function selectTab(tab, focus) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  window.location.hash = tab.dataset.panel;
  app.panels[tab.dataset.panel]?.shown?.();
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      const rtl = document.documentElement.dir === "rtl";
      const step = { ArrowRight: rtl ? -1 : 1, ArrowLeft: rtl ? 1 : -1 }[event.key];
      let next = null;
      if (step) next = tabs[(i + step + tabs.length) % tabs.length];
      if (event.key === "Home") next = tabs[0];
      if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        selectTab(next, true);
      }
    });
  }
  const initial = tabs.find((tab) => tab.dataset.panel === window.location.hash.slice(1)) || tabs[0];
  selectTab(initial, false);
}

// ------------------------------------------------------------------ language and key
function setupSettings() {
  const picker = $("#language");
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const option = new Option(name, code);
    option.lang = code;
    picker.append(option);
  }
  setLanguage(chooseLanguage(), false);
  picker.value = currentLanguage();
  picker.addEventListener("change", () => {
    setLanguage(picker.value, true);
    for (const panel of Object.values(app.panels)) panel.relabel?.();
    app.loadCollections(); // the notice, in the new language
  });

  const key = $("#api-key");
  key.value = app.client.apiKey;
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    app.client.apiKey = key.value.trim();
    if (app.client.apiKey) sessionStorage.setItem(KEY_STORAGE, app.client.apiKey);
    else sessionStorage.removeItem(KEY_STORAGE);
    app.loadCollections();
  });
  $("#collection").addEventListener("change", () => {
    if (app.collection()) localStorage.setItem("babel.collection", app.collection());
    for (const panel of Object.values(app.panels)) panel.collectionChanged?.();
  });
}

setupSettings();
app.panels.search = setupSearch(app);
app.panels.ask = setupAsk(app);
app.panels.documents = setupDocuments(app);
app.panels.batches = setupBatches(app);
setupTabs();
app.loadCollections();
document.body.dataset.ready = "true";
